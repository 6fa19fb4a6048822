"""Command-line plumbing shared by the example MCP servers.

Every server module calls `run_cli()` from its `main()`, which gives it this command line::

    python -m mcp_servers.NAME --transport stdio|streamable-http|sse [--host 127.0.0.1] [--port N]

Contract:

- Logs go to stderr only, whatever the transport.
- stdio: stdout carries JSON-RPC and nothing else. The server exits when stdin closes.
- streamable-http / sse: the listening socket is bound before serving (`--port 0` lets the kernel
  pick a free port). Once uvicorn accepts connections, exactly one line is written to stdout and
  flushed: `MCP_SERVER_READY http://HOST:PORT/mcp` (`.../sse` for SSE), where HOST is the bound
  host (`127.0.0.1` when bound to `0.0.0.0`, `[::1]` when bound to `::`). Nothing else ever reaches stdout.
- The SDK checks the Host header (DNS-rebinding protection) only when bound to a loopback host;
  binding to `0.0.0.0` or a service address turns that check off.
- SIGTERM or SIGINT ends the process with status 0. HTTP transports shut down gracefully, waiting
  at most `GRACEFUL_SHUTDOWN_SECONDS` for open requests (hanging tools, SSE streams) before
  cancelling them. stdio exits at once: the SDK reads stdin on a worker thread that cannot be
  cancelled, so a graceful cancel would block until the peer writes or closes stdin.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Generator, Sequence
from typing import Any

import anyio
import uvicorn
from mcp.server import MCPServer

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "READY_PREFIX", "run_cli"]

READY_PREFIX = "MCP_SERVER_READY"
GRACEFUL_SHUTDOWN_SECONDS = 2

_HTTP_PATHS: dict[str, str] = {"streamable-http": "/mcp", "sse": "/sse"}
_EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)

logger = logging.getLogger(__name__)


def run_cli(
    build: Callable[[argparse.Namespace], MCPServer[Any]],
    *,
    name: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Parse `argv`, build the server with `build(args)` and serve it until stopped.

    `name` is the module name under `mcp_servers` (for `--help`); `add_arguments` lets a server
    add its own options (they arrive in `args`).

    Raises:
        SystemExit: on invalid arguments (status 2), from argparse.
        OSError: if the HTTP socket cannot be bound.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m mcp_servers.{name}", description=f"Example MCP server: {name}", allow_abbrev=False
    )
    parser.add_argument("--transport", choices=("stdio", "streamable-http", "sse"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTP port; 0 picks a free one (default)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)

    # Configured before the server is built, so the SDK's own basicConfig() call is a no-op.
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = build(args)
    if args.transport == "stdio":
        anyio.run(_serve_stdio, server)
    else:
        _serve_http(server, args.transport, host=args.host, port=args.port, log_level=args.log_level)


async def _serve_stdio(server: MCPServer[Any]) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(_exit_on_signal)
        await server.run_stdio_async()
        tg.cancel_scope.cancel()


async def _exit_on_signal() -> None:
    with anyio.open_signal_receiver(*_EXIT_SIGNALS) as signals:
        async for signum in signals:
            logger.info("received %s, exiting", signal.Signals(signum).name)
            sys.stderr.flush()
            os._exit(0)


def _serve_http(server: MCPServer[Any], transport: str, *, host: str, port: int, log_level: str) -> None:
    sock = _bind(host, port)
    path = _HTTP_PATHS[transport]
    app = server.sse_app(host=host) if transport == "sse" else server.streamable_http_app(host=host)
    config = uvicorn.Config(
        app,
        log_config=None,  # uvicorn's default config sends access logs to stdout
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",  # runs the streamable-HTTP session manager
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    ready_line = f"{READY_PREFIX} http://{_display_host(sock)}{path}"
    with sock:
        _AnnouncingServer(config, ready_line=ready_line).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def _display_host(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """uvicorn server that prints the READY line once listening and exits 0 on SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config, *, ready_line: str) -> None:
        super().__init__(config)
        self._ready_line = ready_line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._ready_line, flush=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the captured signal after shutdown, which turns a graceful SIGTERM into
        # exit status -15; handling it here keeps the graceful shutdown and exits normally.
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _EXIT_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)
