"""What one caller may use: the scope of the key it presented.

A scope is attached to the request's ASGI scope by the edge (`attach`) once the key is checked, and
read where a decision is made (`scope_of`): tool resolution for the chat and Responses loops, the
MCP endpoint, model selection. A request without one (no keys configured, an ``--api-key`` value, the
admin plane) is `UNRESTRICTED`.

Tools are named ``SERVER__TOOL`` with the server's and the tool's own names (not the 64-character
shortened name a model sees). A key restricted to tools may use the servers those tools live on, and
only those tools there; a key restricted to servers and tools needs both to allow a call.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

_ASGI_KEY = "smg.key_scope"
TOOL_SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class KeyScope:
    """``None`` in a field means "not restricted". ``name`` is the key's name (None for an
    unrestricted ``--api-key`` value or an open data plane): metrics may carry it, never the key."""

    name: str | None = None
    servers: frozenset[str] | None = None
    tools: frozenset[str] | None = None
    models: frozenset[str] | None = None
    rpm: int | None = None

    @property
    def restricted(self) -> bool:
        return self.servers is not None or self.tools is not None or self.models is not None

    def allows_server(self, server: str) -> bool:
        if self.servers is not None and server not in self.servers:
            return False
        if self.tools is None:
            return True
        prefix = server + TOOL_SEPARATOR
        return any(t.startswith(prefix) for t in self.tools)

    def allows_tool(self, server: str, tool: str) -> bool:
        if not self.allows_server(server):
            return False
        return self.tools is None or f"{server}{TOOL_SEPARATOR}{tool}" in self.tools

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models


UNRESTRICTED = KeyScope()


def attach(asgi_scope: MutableMapping[str, Any], scope: KeyScope) -> None:
    """Record the caller's scope on the request (the edge does this after checking the key)."""
    asgi_scope[_ASGI_KEY] = scope


def scope_of(asgi_scope: MutableMapping[str, Any]) -> KeyScope:
    """The caller's scope; `UNRESTRICTED` when the edge attached none."""
    found = asgi_scope.get(_ASGI_KEY)
    return found if isinstance(found, KeyScope) else UNRESTRICTED
