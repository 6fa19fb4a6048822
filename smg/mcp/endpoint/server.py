"""`McpEndpoint`: the gateway as an MCP server (streamable HTTP, on the SDK's server side), in front of
every registered server.

The api layer mounts `McpEndpoint.handle` on the aggregated path and on each server's own path (it
passes the server's name), after the edge checked the caller's key and attached its scope. `running`
must be entered in the application's lifespan: it runs the SDK's session manager and the task that
tells connected clients the lists changed.

Change notifications: when the registry changes (a server added, removed or redefined on a running
gateway) or a server's tool list changes upstream, every connected client is told
``notifications/tools/list_changed`` (and, for a registry change, the prompts and resources ones):
2026-07-28 clients on their ``subscriptions/listen`` streams, handshake-era clients on their session's
stream. A client of a server's own endpoint may be told of changes elsewhere; re-listing tells it what
changed for it.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)

from smg.mcp.control import McpControl
from smg.mcp.endpoint.tools import ONLY_SERVER, Context, ToolHandlers
from smg.mcp.endpoint.upstream import UpstreamHandlers
from smg.mcp.runtime.hooks import logger
from smg.mcp.runtime.tools import FAILURES, describe
from smg.spans import Tracer

Receive = Any
Send = Any
_REGISTRY: tuple[ServerEvent, ...] = (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged())
_UPSTREAM: tuple[ServerEvent, ...] = (ToolsListChanged(),)
# Revisions are dates: from this one on, changes reach clients only on subscriptions/listen streams.
_FIRST_LISTEN_REVISION = "2026-07-28"


class McpEndpoint:
    """One MCP server for every client of the gateway; see the module docstring."""

    def __init__(self, control: McpControl, *, tracer: Tracer, version: str) -> None:
        """``version``: the gateway's, told to clients as the MCP server's."""
        self._control = control
        tools, upstream = ToolHandlers(control, tracer), UpstreamHandlers(control)
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self._server: Server[Any] = Server(
            "smg",
            version=version,
            instructions="Tools, prompts and resources of the MCP servers registered with this smg gateway.",
            on_list_tools=tools.list_tools,
            on_call_tool=tools.call_tool,
            on_list_prompts=upstream.list_prompts,
            on_get_prompt=upstream.get_prompt,
            on_list_resources=upstream.list_resources,
            on_list_resource_templates=upstream.list_resource_templates,
            on_read_resource=upstream.read_resource,
            on_subscriptions_listen=self._listen,
        )
        self._server.middleware.append(self._remember_session)
        # Handshake-era connections, told of changes on their own stream; gone with their session.
        self._sessions: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._manager: StreamableHTTPSessionManager | None = None
        self._events: MemoryObjectSendStream[tuple[ServerEvent, ...]] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[McpEndpoint]:
        """Serve: the session manager (entered and exited in this task) and the change announcer."""
        manager = StreamableHTTPSessionManager(self._server)
        send, receive = anyio.create_memory_object_stream[tuple[ServerEvent, ...]](64)
        unwatch = [
            self._control.watch(lambda: self._announce(_REGISTRY)),
            self._control.pool.tool_lists.watch(lambda _server: self._announce(_UPSTREAM)),
        ]
        try:
            with send, receive:
                async with manager.run(), anyio.create_task_group() as tg:
                    tg.start_soon(self._announcer, receive)
                    self._manager, self._events = manager, send
                    try:
                        yield self
                    finally:
                        self._manager = self._events = None
                        self._listen.close()
                        tg.cancel_scope.cancel()
        finally:
            for stop in unwatch:
                stop()

    async def handle(
        self, scope: MutableMapping[str, Any], receive: Receive, send: Send, *, server: str | None
    ) -> None:
        """Serve one HTTP request of the aggregated endpoint, or of ``server``'s own endpoint. Raises
        RuntimeError when the endpoint is not running."""
        if self._manager is None:
            raise RuntimeError("the MCP endpoint is not running")
        if server is not None:
            scope[ONLY_SERVER] = server
        await self._manager.handle_request(scope, receive, send)

    def _announce(self, events: tuple[ServerEvent, ...]) -> None:
        if self._events is None:
            return
        # On a burst of changes the notifications already queued tell clients to re-list.
        with contextlib.suppress(anyio.WouldBlock):
            self._events.send_nowait(events)

    async def _announcer(self, receive: MemoryObjectReceiveStream[tuple[ServerEvent, ...]]) -> None:
        async for events in receive:
            for event in events:
                await self._bus.publish(event)
            for session in list(self._sessions):
                try:
                    await _tell_session(session, events)
                except FAILURES as exc:  # a client gone meanwhile; the others are still told
                    logger.debug(
                        "MCP endpoint: a list-changed notification was not delivered: %s", describe(exc)
                    )
                    self._sessions.discard(session)

    async def _remember_session(self, ctx: Context, call_next: CallNext) -> HandlerResult:
        # ``ctx.session`` lives for one request; its connection lives as long as the client's session.
        # The SDK hands the connection only to its own context type, hence the attribute read.
        connection = getattr(ctx.session, "_connection", None)
        if ctx.protocol_version < _FIRST_LISTEN_REVISION and isinstance(connection, Connection):
            self._sessions.add(connection)
        result: HandlerResult = await call_next(ctx)
        return result


async def _tell_session(session: Connection, events: tuple[ServerEvent, ...]) -> None:
    for event in events:
        if isinstance(event, ToolsListChanged):
            await session.send_tool_list_changed()
        elif isinstance(event, PromptsListChanged):
            await session.send_prompt_list_changed()
        elif isinstance(event, ResourcesListChanged):
            await session.send_resource_list_changed()
