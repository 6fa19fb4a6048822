"""`ListWatch`: who wants to know when a server's tool list changed upstream (the gateway's MCP endpoint
tells its clients). It sits in front of the pool's observer, passing every event on."""

from __future__ import annotations

import logging
from collections.abc import Callable

from smg.mcp.runtime.hooks import McpObserver

logger = logging.getLogger("smg.mcp")

_UPSTREAM_REASONS = frozenset({"list_changed", "reconnect"})  # the server said so, or may have restarted


class ListWatch:
    """An `McpObserver` forwarding to ``target``; after a tool list was re-listed because the server
    announced a change (or its session was re-established), every listener gets the server's name."""

    def __init__(self, target: McpObserver) -> None:
        self._target = target
        self._listeners: dict[object, Callable[[str], None]] = {}

    def watch(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Add ``listener`` (called on the event loop, must not block); returns its removal."""
        token = object()
        self._listeners[token] = listener

        def unwatch() -> None:
            self._listeners.pop(token, None)

        return unwatch

    def on_tools_refreshed(self, server: str, reason: str) -> None:
        self._target.on_tools_refreshed(server, reason)
        if reason in _UPSTREAM_REASONS:
            for listener in list(self._listeners.values()):
                try:
                    listener(server)
                except Exception:  # one listener must not starve the others or the telemetry
                    logger.exception("MCP tool-list listener failed")

    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        self._target.on_tool_call(server, tool, status, duration, caller)

    def on_reconnect(self, server: str) -> None:
        self._target.on_reconnect(server)

    def on_stdio_restart(self, server: str) -> None:
        self._target.on_stdio_restart(server)

    def on_server_state(self, server: str, state: str) -> None:
        self._target.on_server_state(server, state)

    def on_breaker(self, server: str, state: str) -> None:
        self._target.on_breaker(server, state)
