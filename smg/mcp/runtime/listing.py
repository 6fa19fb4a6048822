"""`ToolListing`: one server's tool list as its connection keeps it: the cache, what makes it stale, the
re-listing on demand and the owner's background refresher."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from mcp import Client

from smg.mcp.runtime.hooks import McpObserver, notify
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.runtime.tools import FAILURES, ToolCache, describe, fetch_tools
from smg.mcp.types import ToolInfo

logger = logging.getLogger("smg.mcp")


class ToolListing:
    """The tool list of server ``server``, kept as ``options`` say (its TTL; one listing may take as long
    as waiting for a session and opening one). ``safe`` strips secrets from a failure's text before it is
    logged."""

    def __init__(
        self,
        server: str,
        options: ConnectionOptions,
        *,
        observer: McpObserver,
        safe: Callable[[str], str],
    ) -> None:
        self.cache = ToolCache(ttl=options.tools_ttl, clock=options.clock)
        self._server = server
        self._observer = observer
        self._timeout = options.ready_timeout + options.connect_timeout
        self._safe = safe
        self._stale = anyio.Event()  # wakes the refresher; it replaces the event once woken

    @property
    def tools(self) -> list[ToolInfo]:
        return list(self.cache.tools or ())

    def invalidate(self, reason: str) -> None:
        """The list is stale (``reason``: connect, reconnect, list_changed...); the refresher re-lists it."""
        self.cache.invalidate(reason)
        self._stale.set()

    async def refresh(self, client: Client, *, force: bool, reason: str | None = None) -> None:
        """Re-list the tools over ``client`` unless fresh (or ``force``). Raises FAILURES."""
        async with self.cache.lock:
            if not force and self.cache.fresh():
                return
            generation, why = self.cache.generation, reason or self.cache.reason
            with anyio.fail_after(self._timeout):
                tools = await fetch_tools(self._server, client)
            self.cache.store(tools, generation)
        notify(self._observer.on_tools_refreshed, self._server, why)

    async def keep_fresh(self, client: Client, *, failed: Callable[[], None]) -> None:
        """Re-list every time the list goes stale, until cancelled; a failure is logged, then ``failed()``
        is called (the session may be the cause)."""
        while True:
            await self._stale.wait()
            self._stale = anyio.Event()
            try:
                await self.refresh(client, force=False)
            except FAILURES as exc:
                reason = self._safe(describe(exc))
                logger.warning("MCP server %s: refreshing the tool list failed: %s", self._server, reason)
                failed()
