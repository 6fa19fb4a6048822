"""What MCP servers exist: specs, secrets, the YAML file, the registry store, names, checks, views."""
