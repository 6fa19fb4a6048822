"""`AiohttpTransport` under an httpx2 client, against a raw HTTP/1.1 server on 127.0.0.1 that records
what it receives: headers as httpx2 built them, keep-alive, streamed bodies, decoding, and failures
raised as the httpx2 exceptions the mcp SDK and the pool expect."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx2
import pytest

from smg.mcp.runtime.http_transport import AiohttpTransport
from tests.mcp.runtime._support import http_spec, make_pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]
WAIT = 10.0


class Server:
    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.url = ""


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Server]:
    """Each request's head and body are recorded, then ``handler`` answers it; connections persist."""
    state = Server()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                state.heads.append(head)
                state.bodies.append(await reader.readexactly(length))
                await handler(reader, writer, head)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def reply(body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\ncontent-type: application/json", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def ok(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _head: bytes) -> None:
    writer.write(reply(b'{"ok": true}', "x-reply: 1"))
    await writer.drain()


def client(**options: object) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=AiohttpTransport(), **options)  # type: ignore[arg-type]


async def test_requests_go_out_as_httpx2_built_them_and_reuse_one_connection() -> None:
    async def hook(request: httpx2.Request) -> None:
        request.headers["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"

    async with serve(ok) as server, client(headers={"authorization": "Bearer t"}) as http:
        http.event_hooks["request"] = [hook]
        first = await http.post(f"{server.url}/mcp", json={"a": 1}, headers={"mcp-session-id": "s1"})
        second = await http.get(f"{server.url}/mcp?x=%2F")
    assert (first.status_code, first.json(), first.headers["x-reply"]) == (200, {"ok": True}, "1")
    assert second.status_code == 200
    assert server.connections == 1
    head = server.heads[0].decode().lower()
    assert head.startswith("post /mcp http/1.1\r\n")
    sent = ("authorization: bearer t", "mcp-session-id: s1", "traceparent: 00-", "user-agent: python-httpx")
    for line in sent:
        assert f"\r\n{line}" in head
    assert "content-type: application/json" in head and "aiohttp" not in head
    assert server.bodies[0] == b'{"a":1}'
    assert server.heads[1].startswith(b"GET /mcp?x=%2F HTTP/1.1")


async def test_a_body_is_streamed_as_it_arrives_and_decoded_by_httpx2() -> None:
    release = asyncio.Event()

    async def chunked(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"8\r\ndata: 1\n\r\n")
        await writer.drain()
        await asyncio.wait_for(release.wait(), WAIT)
        writer.write(b"8\r\ndata: 2\n\r\n0\r\n\r\n")
        await writer.drain()

    pieces = []
    async with (
        serve(chunked) as server,
        client() as http,
        asyncio.timeout(WAIT),
        http.stream("GET", server.url) as response,
    ):
        async for piece in response.aiter_bytes():
            pieces.append(piece)
            release.set()  # the second part is sent only once the first one was received
    assert b"".join(pieces) == b"data: 1\ndata: 2\n" and len(pieces) == 2

    packed = gzip.compress(b'{"packed": true}')

    async def gzipped(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _head: bytes) -> None:
        writer.write(reply(packed, "content-encoding: gzip"))
        await writer.drain()

    async with serve(gzipped) as server, client() as http:
        response = await http.get(server.url)
    assert response.json() == {"packed": True}
    assert b"accept-encoding: gzip" in server.heads[0].lower()


async def test_failures_are_the_httpx2_exceptions() -> None:
    async with serve(ok) as server:
        closed_url = server.url
    async with client() as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(closed_url)

    async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter, _head: bytes) -> None:
        await asyncio.wait_for(reader.read(), WAIT)

    async with serve(silent) as server, client(timeout=httpx2.Timeout(5.0, read=0.2)) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.get(server.url)

    async def cut(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    async with serve(cut) as server, client() as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get(server.url)

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _head: bytes) -> None:
        writer.close()

    async with serve(hang_up) as server, client() as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get(server.url)


async def test_closing_a_body_before_its_end_closes_its_connection() -> None:
    async def partial_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        if b"/partial" not in head:
            await ok(reader, writer, head)
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # the client hangs up

    async with serve(partial_first) as server, client() as http:
        async with http.stream("GET", f"{server.url}/partial") as response:
            assert response.status_code == 200  # the rest of the body never comes: left unread
        await http.get(server.url)
        await http.get(server.url)
    assert server.connections == 2


async def test_used_only_without_a_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert AiohttpTransport.usable()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert not AiohttpTransport.usable()


def test_not_used_outside_an_asyncio_loop() -> None:
    assert not AiohttpTransport.usable()


async def test_a_pool_session_sends_the_headers_hook_and_the_configured_headers() -> None:
    """The server answers nothing useful (the session never comes up): its first request is enough."""
    traceparent = "00-" + "3" * 32 + "-" + "4" * 16 + "-01"

    asked = asyncio.Event()

    async def refuse(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _head: bytes) -> None:
        asked.set()
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()

    async with serve(refuse) as server:
        spec = http_spec("rec", f"{server.url}/mcp", headers={"x-api-key": "k1"})
        async with make_pool(headers_hook=lambda: {"traceparent": traceparent}) as pool:
            await pool.reconcile([spec])
            await asyncio.wait_for(asked.wait(), WAIT)
    head = server.heads[0].decode().lower()
    assert head.startswith("post /mcp http/1.1\r\n")
    assert f"\r\ntraceparent: {traceparent}\r\n" in head and "\r\nx-api-key: k1\r\n" in head
