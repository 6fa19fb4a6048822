"""Seams of the MCP runtime: the per-server breaker it is given, the observer it reports to, how it
waits between reconnect attempts, and the extra headers of each HTTP request to a server.

Both are small Protocols so that smg.mcp never imports the worker breaker or telemetry code: the
composition root passes ``smg.workers.breaker.CircuitBreaker`` (it fits `BreakerLike`) and the metrics
module implements `McpObserver`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("smg.mcp")

Sleep = Callable[[float], Awaitable[None]]
"""How the runtime waits (injected so tests can control time)."""


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (1-based): ``initial * multiplier**(n-1)``, capped."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))


class BreakerStateLike(Protocol):
    @property
    def label(self) -> str: ...


class BreakerLike(Protocol):
    """A circuit breaker: asked before every call, told how every call that reached the server went."""

    @property
    def state(self) -> BreakerStateLike: ...

    def allows(self) -> bool: ...

    def record_success(self) -> None: ...

    def record_failure(self) -> None: ...


class HeadersHook(Protocol):
    """Headers to add to one HTTP request to an MCP server, computed when the request is sent (in the
    context of the caller; the composition root passes the W3C trace headers of the current span)."""

    def __call__(self) -> Mapping[str, str]: ...


BreakerFactory = Callable[[str], BreakerLike]
"""Builds the breaker of one server, given its name."""


class _ClosedState:
    label = "closed"


class NullBreaker:
    """A breaker that never opens (the default when no breaker factory is given)."""

    state: BreakerStateLike = _ClosedState()

    def allows(self) -> bool:
        return True

    def record_success(self) -> None:
        pass

    def record_failure(self) -> None:
        pass


class McpObserver(Protocol):
    """Telemetry seam of the MCP runtime. Implementations must be cheap; exceptions are logged and dropped."""

    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        """One tool call ended; ``caller`` is a `smg.mcp.types.Caller`."""
        ...

    def on_reconnect(self, server: str) -> None: ...

    def on_stdio_restart(self, server: str) -> None: ...

    def on_tools_refreshed(self, server: str, reason: str) -> None: ...

    def on_server_state(self, server: str, state: str) -> None: ...

    def on_breaker(self, server: str, state: str) -> None: ...


class NullMcpObserver:
    """Observer that records nothing."""

    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        pass

    def on_reconnect(self, server: str) -> None:
        pass

    def on_stdio_restart(self, server: str) -> None:
        pass

    def on_tools_refreshed(self, server: str, reason: str) -> None:
        pass

    def on_server_state(self, server: str, state: str) -> None:
        pass

    def on_breaker(self, server: str, state: str) -> None:
        pass


def notify(hook: Callable[..., None], *args: object) -> None:
    """Call an observer hook; telemetry must never break the runtime, so its failures are only logged."""
    try:
        hook(*args)
    except Exception:  # the telemetry guard: an observer bug must not fail a tool call
        logger.exception("MCP observer hook %s failed", getattr(hook, "__name__", hook))
