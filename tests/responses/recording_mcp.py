"""An MCP server over streamable HTTP that records what reaches it, for the request-defined servers tests.

``python -m tests.responses.recording_mcp [--port N]`` prints ``MCP_SERVER_READY http://127.0.0.1:PORT/mcp``
once listening, and serves besides MCP:

- ``GET /_seen``: ``{"headers": [...], "open": N}``: the headers of every HTTP request made to ``/mcp``
  (names lower-cased), and the TCP connections open right now other than the one asking.

Tools: ``echo(text)`` (read-only), ``write(text)`` (destructive), ``fail()`` (a tool error),
``meet(key, n)`` (read-only: returns ``met`` once ``n`` calls with ``key`` are in progress at once,
``alone`` when they were not within 10 s: concurrent calls meet, sequential ones do not),
``hang()`` (never returns).
"""

from __future__ import annotations

import argparse
import json
import socket
from collections import defaultdict
from typing import Any

import anyio
import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from starlette.types import Receive, Scope, Send

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False)
_MEET_SECS = 10.0


def build() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("recording")
    waiting: dict[str, list[anyio.Event]] = defaultdict(list)

    @server.tool(annotations=_READ_ONLY)
    def echo(text: str) -> str:
        """Return ``text``."""
        return f"echo: {text}"

    @server.tool(annotations=_WRITES)
    def write(text: str) -> str:
        """Pretend to write ``text``."""
        return f"wrote: {text}"

    @server.tool(annotations=_READ_ONLY)
    def fail() -> str:
        """Always fails."""
        raise ToolError("this tool always fails")

    @server.tool(annotations=_READ_ONLY)
    async def meet(key: str, n: int) -> str:
        """``met`` once ``n`` calls with ``key`` run at once, else ``alone``."""
        event = anyio.Event()
        waiting[key].append(event)
        if len(waiting[key]) >= n:
            for other in waiting[key]:
                other.set()
        with anyio.move_on_after(_MEET_SECS):
            await event.wait()
        return "met" if event.is_set() else "alone"

    @server.tool(annotations=_READ_ONLY)
    async def hang() -> str:
        """Never returns."""
        await anyio.Event().wait()
        return "unreachable"

    return server


class _Recorder:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.server: uvicorn.Server | None = None
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_seen":
            assert self.server is not None
            body = json.dumps(
                {"headers": self.seen, "open": len(self.server.server_state.connections) - 1}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"].startswith("/mcp"):
            self.seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


class _Announcing(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self._line = line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen()
    recorder = _Recorder(build().streamable_http_app(host="127.0.0.1"))
    config = uvicorn.Config(
        recorder, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    server = _Announcing(config, f"MCP_SERVER_READY http://127.0.0.1:{sock.getsockname()[1]}/mcp")
    recorder.server = server
    with sock:
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
