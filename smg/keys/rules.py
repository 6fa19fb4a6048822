"""Refusals a key's scope causes, raised where the decision is made."""

from __future__ import annotations

from smg.errors import McpServerForbidden, ModelForbidden
from smg.keys.scope import KeyScope


def require_model(scope: KeyScope, model: str) -> None:
    """Raises ModelForbidden (403, ``param`` ``model``) when ``scope`` does not include ``model``."""
    if scope.models is not None and model not in scope.models:
        raise ModelForbidden(model, key=scope.name)


def require_tool(scope: KeyScope, server: str, tool: str, *, param: str | None = None) -> None:
    """Raises McpServerForbidden (403) when ``scope`` does not include the tool ``tool`` of ``server``."""
    if not scope.allows_tool(server, tool):
        raise McpServerForbidden(
            f"the API key {scope.name!r} may not use the tool {tool!r} of the MCP server {server!r}",
            server=server,
            param=param,
        )
