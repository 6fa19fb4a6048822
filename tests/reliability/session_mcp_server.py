"""An MCP server over streamable HTTP that keeps server-side sessions (`mcp-session-id`), for tests of
what the gateway does when a server forgets its session.

It speaks only the 2025-11-25 (handshake) protocol: a request in a newer protocol version (the
2026-07-28 `server/discover` probe) is refused with 400, so a 2.x client falls back to `initialize` and
gets a session. Side endpoints, outside MCP:

- ``POST /_expire`` ends every open session at once, as its idle timeout would: its streams close and
  its ID answers 404 from then on. Answers ``{"expired": N}``.
- ``POST /_forget`` forgets every session ID but leaves the session's open streams up, as a server
  that lost its session table (or a replica that never saw the session) does: the client learns of
  it only from the 404 to its next request. Answers ``{"forgotten": N}``.
- ``GET /_stats`` answers ``{"open": N, "not_found": N, "calls": {tool: N}}``: sessions open now,
  requests answered 404 so far, and tool runs per tool.

Prints ``MCP_SERVER_READY http://127.0.0.1:PORT/mcp`` once listening; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import socket
from collections import Counter
from typing import Any

import anyio
import uvicorn
from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STATS: dict[str, Any] = {"not_found": 0, "calls": Counter()}


def _build(idle_timeout: float | None) -> tuple[MCPServer[Any], ASGIApp]:
    srv: MCPServer[Any] = MCPServer("sessions")

    @srv.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def echo(text: str) -> str:
        """Return ``text`` (read-only)."""
        _STATS["calls"]["echo"] += 1
        return text

    @srv.tool(annotations=ToolAnnotations(destructiveHint=True))
    def append(text: str) -> str:
        """Record ``text`` (destructive: never replayed after an outcome-unknown failure)."""
        _STATS["calls"]["append"] += 1
        return f"appended {text}"

    @srv.tool(annotations=ToolAnnotations(destructiveHint=True))
    async def slow(seconds: float) -> str:
        """Count the call, then take ``seconds`` (destructive)."""
        _STATS["calls"]["slow"] += 1
        await anyio.sleep(seconds)
        return "done"

    @srv.custom_route("/_expire", methods=["POST"])
    async def expire(_: Request) -> Response:
        manager = srv.session_manager
        sessions = list(manager._server_instances.items())  # the SDK has no public way to end sessions
        for session_id, transport in sessions:
            await manager._discard_session(session_id, transport)  # as its idle timeout does
        return JSONResponse({"expired": len(sessions)})

    @srv.custom_route("/_forget", methods=["POST"])
    async def forget(_: Request) -> Response:
        manager = srv.session_manager
        forgotten = len(manager._server_instances)  # the SDK has no public way to end sessions
        manager._server_instances.clear()  # their transports stay up until shutdown
        return JSONResponse({"forgotten": forgotten})

    @srv.custom_route("/_stats", methods=["GET"])
    async def stats(_: Request) -> Response:
        manager = srv.session_manager
        body = {**_STATS, "open": len(manager._server_instances)}
        return JSONResponse(body)

    app = srv.streamable_http_app(host="127.0.0.1", session_idle_timeout=idle_timeout)
    return srv, _HandshakeOnly(app)


class _HandshakeOnly:
    """Refuses requests in a protocol version newer than the handshake era, and counts 404 answers."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        version = headers.get(b"mcp-protocol-version", b"").decode("latin-1")
        if version and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"only 2025-11-25 here"}}'
            await Response(body, status_code=400, media_type="application/json")(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 404:
                _STATS["not_found"] += 1
            await send(message)

        await self._app(scope, receive, counting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--session-idle-timeout", type=float, default=None)
    args = parser.parse_args()
    _, app = _build(args.session_idle_timeout)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    print(f"MCP_SERVER_READY http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
