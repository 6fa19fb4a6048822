"""The metrics listener: ``GET /metrics`` on its own host/port (aiohttp, inside the gateway's loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from smg.observability.metrics import Metrics


@asynccontextmanager
async def metrics_listener(
    metrics: Metrics | Callable[[], bytes], *, host: str, port: int
) -> AsyncIterator[int]:
    """Serve ``/metrics`` (``metrics``' registry, or what the renderer ``metrics`` returns) until the
    context exits; yields the bound port (useful with ``port=0``)."""
    render = metrics.render if isinstance(metrics, Metrics) else metrics

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host=host, port=port)
    try:
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        yield sockets[0].getsockname()[1] if sockets else port
    finally:
        await runner.cleanup()
