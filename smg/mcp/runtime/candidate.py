"""A candidate: the connection of a server that is being registered, opened by the pool but not served.

Registration validates a server on the session that will serve it: the pool opens the connection
(`McpPool.open_candidate`), the caller reads its first tool list, and then either the pool adopts it (when
`McpPool.reconcile` is given the same spec) or it is closed (`McpPool.discard`). Until it is adopted its
telemetry is held back, so a server that is refused leaves no trace in the metrics, and one whose name
is taken does not disturb the served server's series.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from smg.mcp.runtime.connection import ServerConnection
from smg.mcp.runtime.hooks import McpObserver, notify

_HELD_EVENTS = 64  # a candidate connects and lists its tools once: a handful of events


class HeldObserver:
    """An `McpObserver` that keeps events until `release` (then replays them to ``target`` and passes
    later ones straight on). ``settled`` is set once the first connection attempt is over."""

    def __init__(self, target: McpObserver) -> None:
        self.settled = anyio.Event()
        self._target = target
        self._held: deque[tuple[Callable[..., None], tuple[object, ...]]] | None = deque(maxlen=_HELD_EVENTS)

    def release(self) -> None:
        held, self._held = self._held, None
        for hook, args in held or ():
            notify(hook, *args)

    def _emit(self, hook: Callable[..., None], *args: object) -> None:
        if self._held is None:
            hook(*args)  # called through `notify` by the connection already
        else:
            self._held.append((hook, args))

    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        self._emit(self._target.on_tool_call, server, tool, status, duration, caller)

    def on_reconnect(self, server: str) -> None:
        self._emit(self._target.on_reconnect, server)

    def on_stdio_restart(self, server: str) -> None:
        self._emit(self._target.on_stdio_restart, server)

    def on_tools_refreshed(self, server: str, reason: str) -> None:
        self._emit(self._target.on_tools_refreshed, server, reason)

    def on_server_state(self, server: str, state: str) -> None:
        if state != "connecting":
            self.settled.set()
        self._emit(self._target.on_server_state, server, state)

    def on_breaker(self, server: str, state: str) -> None:
        self._emit(self._target.on_breaker, server, state)


@dataclass(frozen=True, eq=False)
class Candidate:
    """A connection opened for registration, and the observer that holds its telemetry back."""

    connection: ServerConnection
    observer: HeldObserver
