"""The gateway's HTTP server: its listening socket, its uvicorn configuration, and `serve`.

Shutdown of `serve` on SIGTERM or SIGINT: the listening socket is closed at once (new connections are
refused; idle keep-alive connections are closed), requests in flight (streams and tool loops included)
get up to ``--shutdown-grace-period-secs`` to finish and are cancelled after that, then the MCP sessions
are closed and stdio MCP children stopped. A second SIGINT forces an immediate stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from smg.app import create_app
from smg.context import build_context
from smg.observability.server import metrics_listener
from smg.serving.allocator import returning_freed_memory
from smg.serving.http_protocol import head_bounded_protocol
from smg.settings import ServerSettings, Settings

log = logging.getLogger("smg")


class ReadyServer(uvicorn.Server):
    """uvicorn server that reports when it has started listening, and logs when it starts to drain."""

    def __init__(self, config: uvicorn.Config, *, grace_secs: float = 30.0) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self._grace_secs = grace_secs

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info(
            "shutting down: new connections are refused; %d request(s) in flight have %g s to finish",
            len(self.server_state.tasks),
            self._grace_secs,
        )
        await super().shutdown(sockets=sockets)


def bind(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A non-blocking listening TCP socket on ``host`` (IPv4 or IPv6) and ``port`` (0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def display_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a listener on ``host``: a wildcard address becomes
    the loopback one of its family, an IPv6 address is bracketed."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return (
        f"http://[{shown}]:{port}" if ":" in shown and not shown.startswith("[") else f"http://{shown}:{port}"
    )


def uvicorn_config(app: ASGIApp, server: ServerSettings) -> uvicorn.Config:
    """How uvicorn serves the gateway's ``app``: request heads bounded as ``server`` says, the lifespan
    run, its log lines through the gateway's one handler, no access log and no ``Server`` header, in-flight
    requests given the shutdown grace period."""
    return uvicorn.Config(
        app,
        loop="none",
        http=head_bounded_protocol(
            max_head_bytes=server.max_request_head_bytes,
            head_timeout_secs=server.request_head_timeout_secs,
        ),
        # Client addresses are the TCP peer's: the admin plane's loopback rule must not be
        # steerable by X-Forwarded-For from a local proxy or client.
        proxy_headers=False,
        lifespan="on",
        # uvicorn's own loggers propagate to the one handler of `configure_logging` (URL redaction,
        # --log-json) instead of getting handlers of their own.
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=math.ceil(server.shutdown_grace_period_secs),
    )


async def serve(
    settings: Settings,
    *,
    on_ready: Callable[[str, str], None],
    sock: socket.socket | None = None,
    metrics: bool = True,
) -> None:
    """Serve the gateway ``settings`` describe until SIGINT/SIGTERM (see the module's text). Once
    listening, calls ``on_ready(url, metrics_url)``. Raises OSError when a port cannot be bound, and
    `smg.errors.SmgError` for a start-up configuration the context refuses.

    ``sock``: a listening socket to serve on instead of binding one (a serving process under the
    supervisor, `smg.serving.supervisor`); ``metrics`` False: no metrics listener of its own (the
    supervisor serves them all; ``metrics_url`` is then empty)."""
    server_cfg = settings.server
    sock = sock if sock is not None else bind(server_cfg.host, server_cfg.port)
    # returning_freed_memory: the RSS goes back near its baseline after a burst of streams.
    async with build_context(settings) as ctx, returning_freed_memory():
        app = create_app(settings, context=ctx)
        grace = server_cfg.shutdown_grace_period_secs
        server = ReadyServer(uvicorn_config(app, server_cfg), grace_secs=grace)
        listener = (
            metrics_listener(ctx.metrics, host=server_cfg.metrics_host, port=server_cfg.prometheus_port)
            if metrics
            else contextlib.nullcontext(0)
        )
        async with listener as mport:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
            ready = asyncio.create_task(server.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if server.started:
                port = sock.getsockname()[1]
                metrics_url = f"{display_url(server_cfg.metrics_host, mport)}/metrics" if metrics else ""
                on_ready(display_url(server_cfg.host, port), metrics_url)
            await task
    sock.close()
    log.info("stopped")
