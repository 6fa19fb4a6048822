"""`GuardedCalls`: the tool calls of one connection behind its circuit breaker and its replay policy,
each reported to the observer once it has ended (with the caller that made it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from smg.mcp.runtime.hooks import BreakerLike, McpObserver, notify
from smg.mcp.runtime.retrying import Attempt, ReplayPolicy
from smg.mcp.types import Caller, ToolOutcome, ToolStatus


class GuardedCalls:
    """Runs the attempts of one call of server ``server``: refused while ``breaker`` is open, replayed as
    ``replays`` allow; an unavailable server or a timeout counts as a breaker failure, anything else
    (a tool error included: the server answered) as a success."""

    def __init__(
        self,
        server: str,
        *,
        breaker: BreakerLike,
        replays: ReplayPolicy,
        observer: McpObserver,
        clock: Callable[[], float],
    ) -> None:
        self._server = server
        self._breaker = breaker
        self._replays = replays
        self._observer = observer
        self._clock = clock

    async def run(self, tool: str, caller: Caller, attempt: Callable[[], Awaitable[Attempt]]) -> ToolOutcome:
        """The outcome of the call of ``tool`` whose attempts ``attempt()`` makes."""
        start = self._clock()
        if not self._breaker.allows():
            text = f"the circuit breaker of MCP server {self._server!r} is open"
            return self._finish(tool, caller, ("breaker_open", text), start, attempts=0)
        (status, text, _), attempts = await self._replays.run(attempt)
        before = self._breaker.state.label
        if status in ("unavailable", "timeout"):
            self._breaker.record_failure()
        else:
            self._breaker.record_success()
        if self._breaker.state.label != before:
            notify(self._observer.on_breaker, self._server, self._breaker.state.label)
        return self._finish(tool, caller, (status, text), start, attempts=attempts)

    def _finish(
        self, tool: str, caller: Caller, end: tuple[ToolStatus, str], start: float, *, attempts: int
    ) -> ToolOutcome:
        (status, text), duration = end, self._clock() - start
        notify(self._observer.on_tool_call, self._server, tool, status, duration, caller)
        return ToolOutcome(self._server, tool, status, text, duration, attempts=attempts)
