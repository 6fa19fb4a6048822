"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from smg import __version__
from smg.api import admin, chat, health, mcp_admin, models
from smg.api.errors import install_error_handlers
from smg.api.middleware import EdgeMiddleware
from smg.context import AppContext, build_context
from smg.settings import Settings


def create_app(settings: Settings, *, context: AppContext | None = None) -> FastAPI:
    """Build the gateway app. Without ``context`` the app builds its own in its lifespan; with one
    (tests, the launcher) the caller owns it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            app.state.context = context
            yield
            return
        async with build_context(settings) as ctx:
            app.state.context = ctx
            yield

    # FastAPI's own OpenTelemetry layer is off: smg makes its server span itself (--enable-trace), and
    # the layer's per-request check of the global providers costs more than the edge's whole work.
    app = FastAPI(
        title="smg",
        version=__version__,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for module in (chat, models, health, admin, mcp_admin):
        app.include_router(module.router)
    # (regex, template) of every route, for labelling requests the edge refuses before routing.
    app.state.route_templates = [
        (route.path_regex, route.path)
        for module in (chat, models, health, admin, mcp_admin)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    install_error_handlers(app)
    app.add_middleware(EdgeMiddleware, shortcuts={("POST", chat.CHAT_ROUTE): chat.serve_chat})
    return app
