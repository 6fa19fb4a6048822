"""Run the gateway in-process on 127.0.0.1 (port 0) for tests: real HTTP, injectable clock and sleep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from smg.app import create_app
from smg.context import AppContext, build_context
from smg.serving.server import ReadyServer, bind, uvicorn_config
from smg.settings import ServerSettings, Settings


@dataclass(frozen=True)
class RunningGateway:
    url: str
    context: AppContext


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, *, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` on a free port in the current loop, as ``smg launch`` serves it with the default
    server settings (`smg.serving.server.uvicorn_config`); yields its base URL."""
    sock = bind(host, 0, backlog=512)
    server = ReadyServer(uvicorn_config(app, ServerSettings()))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # tests own signals
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        ready = asyncio.create_task(server.ready.wait())
        async with asyncio.timeout(10):
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, **context_kwargs: Any) -> AsyncIterator[RunningGateway]:
    """Build the context (``context_kwargs`` go to `build_context`: metrics, clock, sleep, rng) and serve."""
    async with (
        build_context(settings, **context_kwargs) as ctx,
        serving(create_app(settings, context=ctx)) as url,
    ):
        yield RunningGateway(url=url, context=ctx)
