"""``smg launch``: run the gateway and its metrics listener until SIGINT/SIGTERM.

Shutdown on SIGTERM or SIGINT: the listening socket is closed at once (new connections are refused;
idle keep-alive connections are closed), requests in flight (streams and tool loops included) get up to
``--shutdown-grace-period-secs`` to finish and are cancelled after that, then the MCP sessions are
closed and stdio MCP children stopped, and the process exits with status 0. A second SIGINT forces an
immediate stop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import signal
import socket
import sys
from collections.abc import Callable

import uvicorn
import uvloop

from smg.api.http_server import head_bounded_protocol
from smg.app import create_app
from smg.cli.allocator import returning_freed_memory
from smg.context import build_context
from smg.errors import SmgError
from smg.observability.server import metrics_listener
from smg.settings import Settings

log = logging.getLogger("smg")
READY_PREFIX = "smg listening on"


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


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return (
        f"http://[{shown}]:{port}" if ":" in shown and not shown.startswith("[") else f"http://{shown}:{port}"
    )


def _print_ready(url: str, metrics_url: str) -> None:
    print(f"{READY_PREFIX} {url} (metrics {metrics_url})", flush=True)


async def serve(settings: Settings, *, on_ready: Callable[[str, str], None] = _print_ready) -> None:
    """Serve until SIGINT/SIGTERM. Once listening, calls ``on_ready(url, metrics_url)``; by default
    that prints one line ``smg listening on URL (metrics METRICS_URL)`` to stdout."""
    server_cfg = settings.server
    sock = _bind(server_cfg.host, server_cfg.port)
    # returning_freed_memory: the RSS goes back near its baseline after a burst of streams.
    async with build_context(settings) as ctx, returning_freed_memory():
        app = create_app(settings, context=ctx)
        config = uvicorn.Config(
            app,
            loop="none",
            http=head_bounded_protocol(
                max_head_bytes=server_cfg.max_request_head_bytes,
                head_timeout_secs=server_cfg.request_head_timeout_secs,
            ),
            # Client addresses are the TCP peer's: the admin plane's loopback rule must not be
            # steerable by X-Forwarded-For from a local proxy or client.
            proxy_headers=False,
            lifespan="on",
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=math.ceil(server_cfg.shutdown_grace_period_secs),
        )
        server = ReadyServer(config, grace_secs=server_cfg.shutdown_grace_period_secs)
        async with metrics_listener(
            ctx.metrics, host=server_cfg.metrics_host, port=server_cfg.prometheus_port
        ) as mport:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
            ready = asyncio.create_task(server.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if server.started:
                port = sock.getsockname()[1]
                on_ready(_url(server_cfg.host, port), f"{_url(server_cfg.metrics_host, mport)}/metrics")
            await task
    sock.close()
    log.info("stopped")


def run(settings: Settings) -> int:
    """Blocking entry point used by the CLI; returns the process exit code."""
    # Fewer young-generation collections: a request allocates thousands of short-lived objects, most
    # freed by reference counting. Process-wide, so set here rather than in the app (docs/benchmarks.md).
    gc.set_threshold(50_000, 20, 100)
    try:
        uvloop.run(serve(settings))
    except OSError as exc:
        print(f"smg: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except SmgError as exc:  # start-up configuration, e.g. an invalid --mcp-config-path file
        print(f"smg: error: {exc.message}", file=sys.stderr)
        return 2
    return 0
