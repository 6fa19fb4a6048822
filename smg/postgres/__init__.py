"""The gateway's PostgreSQL database (`--database-url postgresql://...`): connections, versioned schema
migrations and the change feed its stores share (ADR 0015)."""
