"""API keys that carry scopes: which MCP servers, tools and models a key may use, and its rate."""
