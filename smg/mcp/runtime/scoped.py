"""`ScopedRuntime`: the registered servers plus one request's own connections, as one `McpRuntime`.

A request's own servers (`smg.mcp.runtime.request_servers`) are listed and called on their connections,
every other name on the base runtime (the pool). A request server that cannot list its tools fails the
request's listing (the request asked for it by name, as a ``required`` server would).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from smg.mcp.runtime.connection import ServerConnection
from smg.mcp.runtime.convert import truncate_text
from smg.mcp.types import Caller, McpRuntime, Progress, ServerStatus, ToolInfo, ToolOutcome


class ScopedRuntime:
    """``base`` and ``own`` (name -> the request's connection); implements `McpRuntime`. Results of
    ``own`` servers are cut to ``max_output_bytes`` (0: not cut), as the pool cuts its own."""

    def __init__(
        self, base: McpRuntime, own: Mapping[str, ServerConnection], *, max_output_bytes: int = 0
    ) -> None:
        self.base = base
        self._own = dict(own)
        self._max_output_bytes = max_output_bytes

    def statuses(self) -> list[ServerStatus]:
        statuses = self.base.statuses() + [c.status() for c in self._own.values()]
        return sorted(statuses, key=lambda status: status.name)

    async def list_tools(
        self, servers: list[str] | None = None, *, refresh: bool = False
    ) -> dict[str, list[ToolInfo]]:
        names = servers if servers is not None else [s.name for s in self.statuses()]
        theirs = [name for name in names if name not in self._own]
        listed = await self.base.list_tools(theirs, refresh=refresh) if theirs else {}
        for name in names:
            if name in self._own:
                listed[name] = await self._own[name].list_tools(refresh=refresh)
        return listed

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        caller: Caller = "loop",
        progress: Progress | None = None,
    ) -> ToolOutcome:
        connection = self._own.get(server)
        if connection is None:
            return await self.base.call_tool(server, tool, arguments, caller=caller, progress=progress)
        outcome = await connection.call_tool(tool, arguments, caller=caller, progress=progress)
        text = truncate_text(outcome.text, self._max_output_bytes)
        return outcome if text is outcome.text else dataclasses.replace(outcome, text=text)
