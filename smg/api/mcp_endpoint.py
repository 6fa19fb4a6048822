"""The gateway's MCP endpoint on its HTTP port (data plane: the caller's key and its scope apply):

- ``/mcp``: every registered server the key may use, names ``<server>__<name>`` (`smg.mcp.endpoint`);
- ``/mcp/scoped/{server}``: one server, under its tools' and prompts' own names. An unknown server is
  404 (``mcp_server_not_found``), one the key may not use 403 (``mcp_server_forbidden``).

Both speak streamable HTTP (GET, POST, DELETE). `serving` runs the endpoint; the application's lifespan
enters it once the context is attached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from smg.errors import McpServerForbidden, ServiceUnavailable
from smg.keys.scope import scope_of
from smg.mcp.control import McpControl
from smg.spans import Tracer

if TYPE_CHECKING:
    from smg.mcp.endpoint.server import McpEndpoint

MCP_PATH = "/mcp"
SCOPED_PREFIX = "/mcp/scoped/"
_METHODS = ["GET", "POST", "DELETE"]


class EndpointContext(Protocol):
    """What the MCP endpoint needs from the application context."""

    @property
    def mcp(self) -> McpControl: ...
    @property
    def tracing(self) -> Tracer: ...


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[None]:
    """Serve the endpoint of ``app`` (whose context is attached; its ``version`` is told to clients)
    while the block runs; must be entered and exited in one task (the SDK's session manager runs a task
    group)."""
    from smg.mcp.endpoint.server import McpEndpoint  # the SDK's server side: loaded only to serve

    ctx: EndpointContext = app.state.context
    async with McpEndpoint(ctx.mcp, tracer=ctx.tracing, version=app.version).running() as endpoint:
        app.state.mcp_endpoint = endpoint
        try:
            yield
        finally:
            app.state.mcp_endpoint = None


class _Serve:
    """The ASGI endpoint of one of the two routes (a class, so the router passes the raw ASGI call)."""

    def __init__(self, *, scoped: bool) -> None:
        self._scoped = scoped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        endpoint: McpEndpoint | None = getattr(app.state, "mcp_endpoint", None)
        if endpoint is None:
            raise ServiceUnavailable("the MCP endpoint is not running")
        server: str | None = scope["path_params"]["server"] if self._scoped else None
        if server is not None:
            ctx: EndpointContext = app.state.context
            ctx.mcp.get(server)  # McpServerNotFound: 404
            if not scope_of(scope).allows_server(server):
                raise McpServerForbidden(f"this API key may not use the MCP server {server!r}", server=server)
        await endpoint.handle(scope, receive, send, server=server)


def routes() -> list[Route]:
    """The endpoint's routes, for the application to add (not in the OpenAPI document: MCP is not
    described by it)."""
    return [
        Route(MCP_PATH, _Serve(scoped=False), methods=_METHODS, include_in_schema=False),
        Route(SCOPED_PREFIX + "{server}", _Serve(scoped=True), methods=_METHODS, include_in_schema=False),
    ]
