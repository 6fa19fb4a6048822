"""smg: an OpenAI-compatible, MCP-aware agent gateway."""

__version__ = "0.1.0"
