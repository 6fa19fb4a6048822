"""``tools/list`` and ``tools/call`` of the gateway's MCP endpoint.

A call runs through the pool exactly as a tool loop's does (the server's session, breaker, timeout,
annotation-gated replays, output cap, metrics) with the caller ``mcp_client``, under a ``tools/call`` span
with ``smg.tool.caller=mcp_client``. The upstream server's progress notifications are relayed when the
client asked for progress; a client that cancels the call (or drops its stream) cancels it upstream.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)

from smg.keys.scope import scope_of
from smg.mcp.control import McpControl
from smg.mcp.endpoint.catalog import View
from smg.mcp.errors import McpServerNotFound, McpServerUnavailable
from smg.mcp.types import Progress, ToolInfo, ToolOutcome
from smg.spans import Tracer

ONLY_SERVER = "smg.mcp_endpoint_server"
"""ASGI scope key naming the server of a server's own endpoint (absent on the aggregated one)."""

Context = ServerRequestContext[Any, Any]


def view_of(ctx: Context) -> View:
    """The caller's view: its key's scope and the endpoint it came through, read from the HTTP request
    that carried the message."""
    asgi: MutableMapping[str, Any] = getattr(ctx.request, "scope", None) or {}
    only = asgi.get(ONLY_SERVER)
    return View(scope_of(asgi), only if isinstance(only, str) else None)


def wire_tool(name: str, info: ToolInfo) -> Tool:
    annotations = None if info.annotations is None else ToolAnnotations.model_validate(info.annotations)
    return Tool(
        name=name,
        title=info.title,
        description=info.description,
        input_schema=info.input_schema,
        annotations=annotations,
    )


def _relay(ctx: Context) -> Progress | None:
    """Hands upstream progress to the client, when it asked for progress (else None: none is asked
    of the upstream server either)."""
    if ctx.meta is None or ctx.meta.get("progress_token") is None:
        return None

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await ctx.session.report_progress(progress, total, message)

    return relay


class ToolHandlers:
    def __init__(self, control: McpControl, tracer: Tracer) -> None:
        self._control = control
        self._tracer = tracer

    async def list_tools(self, ctx: Context, params: PaginatedRequestParams | None) -> ListToolsResult:
        tools = await view_of(ctx).tools(self._control)
        return ListToolsResult(tools=[wire_tool(name, info) for name, info in tools.items()])

    async def call_tool(self, ctx: Context, params: CallToolRequestParams) -> CallToolResult:
        """Unknown names (and names the key may not use) are a JSON-RPC invalid-params error, as the
        specification has it; everything that goes wrong in or behind the call is an ``isError`` result."""
        view = view_of(ctx)
        info = await self._resolve(view, params.name)
        if info is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        with self._tracer.tool_call(info.server, info.name, call_id=str(ctx.request_id or "")) as span:
            span.set("smg.tool.caller", "mcp_client")
            outcome = await self._call(info, params.arguments or {}, _relay(ctx))
            span.set("smg.tool.status", outcome.status)
            if not outcome.ok:
                span.fail(outcome.status)
        return CallToolResult(content=[TextContent(type="text", text=outcome.text)], is_error=not outcome.ok)

    async def _resolve(self, view: View, name: str) -> ToolInfo | None:
        """The tool called ``name``, listing only the servers whose names it can stand for (a server that
        is down does not hold up calls of the others' tools)."""
        servers = view.servers(self._control)
        if view.only is None:  # every endpoint name of a server's tool starts with "<server>__"
            servers = [server for server in servers if name.startswith(server + "__")]
        return (await view.tools(self._control, servers)).get(name)

    async def _call(
        self, info: ToolInfo, arguments: dict[str, Any], progress: Progress | None
    ) -> ToolOutcome:
        try:
            return await self._control.pool.call_tool(
                info.server, info.name, arguments, caller="mcp_client", progress=progress
            )
        except (McpServerNotFound, McpServerUnavailable) as exc:  # unregistered or closed meanwhile
            return ToolOutcome(info.server, info.name, "unavailable", exc.message, 0.0)
