"""The per-server tool cache, the paginated tool listing, and how session failures are named."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.subscriptions import ListenNotSupportedError
from mcp.types import CONNECTION_CLOSED

from smg.mcp.runtime.convert import tool_info
from smg.mcp.types import ToolInfo

# What a request over an MCP session can raise besides cancellation: error responses, invalid results
# (pydantic's ValidationError is a ValueError), transport faults, and use of a session already closed.
FAILURES: tuple[type[Exception], ...] = (
    MCPError,
    ValueError,
    TimeoutError,
    OSError,
    RuntimeError,
    httpx2.HTTPError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)
_MAX_PAGES = 100
logger = logging.getLogger("smg.mcp")
_MAX_REASON = 300


def describe(exc: BaseException) -> str:
    """A one-line, bounded description of a failure (the leaves of an exception group)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)[:_MAX_REASON]
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MCPError):
        text = exc.message
    return f"{type(exc).__name__}: {text}"[:_MAX_REASON]


def session_lost(exc: BaseException) -> bool:
    """Whether a failed request shows the session itself is dead (not just the request)."""
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return not isinstance(exc, ValueError | TimeoutError)


async def fetch_tools(server: str, client: Client) -> list[ToolInfo]:
    """Every tool ``client``'s server lists (following cursors, at most 100 pages). Raises FAILURES."""
    tools: list[ToolInfo] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(tool_info(server, tool) for tool in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class ToolCache:
    """The last tool list of one server, with its generation (bumped by every invalidation) and age."""

    def __init__(self, *, ttl: float, clock: Callable[[], float]) -> None:
        self.tools: list[ToolInfo] | None = None
        self.generation = 0
        self.lock = anyio.Lock()
        self._ttl = ttl
        self._clock = clock
        self._stored_generation = -1
        self._stored_at = -math.inf
        self._reason = "connect"

    @property
    def reason(self) -> str:
        """Why the list is (or was last) stale: the last invalidation, or "ttl"."""
        return self._reason if self._stored_generation != self.generation else "ttl"

    def fresh(self) -> bool:
        return (
            self.tools is not None
            and self._stored_generation == self.generation
            and self._clock() - self._stored_at < self._ttl
        )

    def invalidate(self, reason: str) -> None:
        self.generation += 1
        self._reason = reason

    def store(self, tools: list[ToolInfo], generation: int) -> None:
        """Keep ``tools``, listed after invalidation ``generation`` (a later invalidation keeps it stale)."""
        self.tools = tools
        self._stored_generation = generation
        self._stored_at = self._clock()

    def retry_safe(self, tool: str) -> bool:
        return any(info.name == tool and info.retry_safe for info in self.tools or ())


_LISTEN_RETRY_SECS = 1.0


async def watch_list_changed(
    server: str,
    client: Client,
    on_change: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]],
    subscribed: anyio.Event,
) -> None:
    """Call ``on_change("list_changed")`` for every tools/list_changed event of a 2026-07-28 session's
    ``subscriptions/listen`` stream (re-listening, and assuming a change, after the stream drops).
    Returns at once on handshake-era sessions, whose notifications reach the message handler. Sets
    ``subscribed`` once the first attempt to subscribe is over, whatever its result."""
    dropped = False
    while True:
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                subscribed.set()
                if dropped:
                    on_change("list_changed")  # events may have been missed while away
                async for _event in subscription:
                    on_change("list_changed")
        except ListenNotSupportedError:
            subscribed.set()
            return
        except FAILURES as exc:  # SubscriptionLost is a RuntimeError
            logger.debug("MCP server %s: listen stream ended: %s", server, describe(exc))
        subscribed.set()
        dropped = True
        await sleep(_LISTEN_RETRY_SECS)
