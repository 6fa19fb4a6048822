"""Talking to MCP servers: sessions, the pool, transports, framing, calls, tools, retries, probes."""
