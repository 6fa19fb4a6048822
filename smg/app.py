"""The ASGI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from smg import __version__
from smg.api import (
    admin,
    chat,
    console,
    health,
    keys_admin,
    loops_admin,
    mcp_admin,
    mcp_endpoint,
    models,
    openapi,
    passthrough,
    responses,
)
from smg.api.deps import attach
from smg.api.errors import install_error_handlers
from smg.api.middleware import CHAT_ROUTE, COMPLETIONS_ROUTE, EMBEDDINGS_ROUTE, EdgeMiddleware
from smg.context import AppContext, build_context, instrument_app
from smg.settings import Settings


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """While serving, the objects that exist at start-up (modules, the context: most of the heap) sit
    in the collector's permanent generation: full collections no longer walk them on the request path
    (they were the 80-130 ms p99 of the pass-through benchmark; docs/benchmarks.md)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Gateway(FastAPI):
    """The app, whose pass-through routes (a POST on a path of ``direct``) enter the edge at once when
    nothing wraps the edge: without tracing, the framework's outer layers (server-error, exception
    telemetry, body limit) have nothing to do for them, since the edge renders every error before an
    answer starts and a failure after it reaches the server either way. With tracing on, the server
    span's instrumentation wraps the whole stack, so every request takes it."""

    _direct_edge: EdgeMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self._direct_edge
        if edge is not None and scope["type"] == "http" and edge.serves(scope):
            scope["app"] = self
            await edge(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, context: AppContext | None = None) -> FastAPI:
    """Build the gateway app. Without ``context`` the app builds its own in its lifespan; with one
    (tests, the launcher) the caller owns it. When tracing is on (``context.tracing``, or
    ``--enable-trace`` without a context) the app gets the server-span instrumentation."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            attach(app, context)
            async with mcp_endpoint.serving(app):
                with _frozen_heap():
                    yield
            return
        try:
            async with build_context(settings, tracer_provider=provider) as ctx:
                attach(app, ctx)
                async with mcp_endpoint.serving(app):
                    with _frozen_heap():
                        yield
        finally:
            if provider is not None:
                provider.shutdown()

    # FastAPI's own OpenTelemetry layer stays off: the server span comes from
    # opentelemetry-instrumentation-fastapi (below), and that layer's per-request check of the global
    # providers would cost more than the edge's whole work even with tracing off.
    app = _Gateway(
        title="smg",
        version=__version__,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    routers = (
        chat,
        passthrough,
        models,
        health,
        admin,
        mcp_admin,
        keys_admin,
        loops_admin,
        responses,
        console,
    )
    for module in routers:
        app.include_router(module.router)
    # (regex, template) of every route, for labelling requests the edge refuses before routing.
    app.state.route_templates = [
        (route.path_regex, route.path)
        for module in routers
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    app.router.routes.extend(mcp_endpoint.routes())  # the gateway's MCP endpoint (data plane)
    app.state.route_templates += [(route.path_regex, route.path) for route in mcp_endpoint.routes()]
    install_error_handlers(app)
    openapi.install(app)
    direct: dict[str, ASGIApp] = {
        CHAT_ROUTE: chat.serve_chat,
        COMPLETIONS_ROUTE: passthrough.serve_completions,
        EMBEDDINGS_ROUTE: passthrough.serve_embeddings,
    }
    app.add_middleware(console.ConsoleHeaders)  # inside the edge: the direct routes never reach it
    app.add_middleware(EdgeMiddleware, direct=direct)
    # Now, not in the lifespan: the instrumentation is part of the middleware stack, which is built at
    # the first ASGI event. The lifespan above uses (and shuts down) the provider built here.
    provider, traced = instrument_app(app, settings, context)
    if not traced:
        app._direct_edge = EdgeMiddleware(app.router, direct=direct)
    return app
