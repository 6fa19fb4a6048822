"""Real MCP servers (HTTP ones on 127.0.0.1, stdio ones as children of the pool) for the runtime tests."""

from __future__ import annotations

from tests.mcp_servers.conftest import launch  # noqa: F401  # the same process fixture, shared
