"""`capped_bodies` on an httpx2 client (aiohttp's transport and httpcore2's), against a raw HTTP/1.1 server
on 127.0.0.1: JSON bodies, gzip and deflate bodies, event streams and other bodies over the limit."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from smg.mcp.runtime.framing import MESSAGE_TOO_LARGE
from smg.mcp.runtime.http_limits import capped_bodies
from smg.mcp.runtime.http_transport import AiohttpTransport

LIMIT = 64 * 1024
WAIT = 30.0
CHUNK = 64 * 1024
REQUEST = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "huge"}}

Respond = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Served:
    url: str = ""
    sent: int = 0  # body bytes the server got written before the client went away
    finished: int = 0  # responses written to the end


@asynccontextmanager
async def serve(
    head: str, chunks: Callable[[], list[bytes]] | bytes, *, drain_each: bool = True
) -> AsyncIterator[Served]:
    """Answers every request with ``head`` then the body pieces, one connection per request."""
    state = Served()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":", 1)[1]) for line in request_head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            writer.write(head.encode())
            for piece in [chunks] if isinstance(chunks, bytes) else chunks():
                writer.write(piece)
                if drain_each:
                    await writer.drain()
                state.sent += len(piece)
            await writer.drain()
            state.finished += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def json_head(length: int, *extra: str) -> str:
    lines = ["HTTP/1.1 200 OK", f"content-length: {length}", "content-type: application/json", *extra]
    return "\r\n".join([*lines, "connection: close", "", ""])


SSE_HEAD = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"


@pytest.fixture(params=["aiohttp", "httpcore2"])
def make_client(request: pytest.FixtureRequest) -> Callable[[], httpx2.AsyncClient]:
    def make() -> httpx2.AsyncClient:
        transport = AiohttpTransport() if request.param == "aiohttp" else None
        hook = capped_bodies(limit=LIMIT, sse_limit=LIMIT, name="raw")
        return httpx2.AsyncClient(transport=transport, event_hooks={"response": [hook]})

    return make


def _huge_result(size: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 5, "result": {"text": "x" * size}}).encode()


def _error(body: bytes | str) -> tuple[Any, int]:
    message = json.loads(body)
    return message["id"], message["error"]["code"]


async def test_a_json_body_over_the_limit_becomes_the_requests_error_and_the_rest_is_never_read(
    make_client: Callable[[], httpx2.AsyncClient],
) -> None:
    body = _huge_result(64 * 1024 * 1024)

    def pieces() -> list[bytes]:
        return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]

    async with serve(json_head(len(body)), pieces) as server, make_client() as http:
        async with asyncio.timeout(WAIT):
            response = await http.post(server.url, json=REQUEST)
    assert response.status_code == 200 and _error(response.content) == (5, MESSAGE_TOO_LARGE)
    assert server.finished == 0 and server.sent < len(body) // 2  # the connection was dropped early


async def test_a_json_body_of_exactly_the_limit_passes_whole(
    make_client: Callable[[], httpx2.AsyncClient],
) -> None:
    body = _huge_result(LIMIT - len(_huge_result(0)))
    assert len(body) == LIMIT
    async with serve(json_head(len(body)), body) as server, make_client() as http:
        response = await http.post(server.url, json=REQUEST)
    assert response.content == body


async def test_a_gzip_bomb_is_inflated_only_up_to_the_limit(
    make_client: Callable[[], httpx2.AsyncClient],
) -> None:
    bomb = gzip.compress(_huge_result(128 * 1024 * 1024), compresslevel=1)
    small = gzip.compress(_huge_result(100))
    async with make_client() as http:
        async with serve(json_head(len(small), "content-encoding: gzip"), small) as server:
            whole = await http.post(server.url, json=REQUEST)
        async with serve(json_head(len(bomb), "content-encoding: gzip"), bomb, drain_each=False) as server:
            tracemalloc.start()
            try:
                async with asyncio.timeout(WAIT):
                    response = await http.post(server.url, json=REQUEST)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    assert whole.content == _huge_result(100)
    assert _error(response.content) == (5, MESSAGE_TOO_LARGE)
    assert peak < len(bomb) + 8 * 1024 * 1024, peak  # 128 MiB inflated: never held


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
async def test_deflate_bodies_in_either_framing_are_inflated(
    make_client: Callable[[], httpx2.AsyncClient], wbits: int
) -> None:
    packer = zlib.compressobj(wbits=wbits)
    packed = packer.compress(_huge_result(1000)) + packer.flush()
    head = json_head(len(packed), "content-encoding: deflate")
    async with serve(head, packed) as server, make_client() as http:
        response = await http.post(server.url, json=REQUEST)
    assert response.content == _huge_result(1000)
    assert "content-encoding" not in response.headers


def _event(data: dict[str, Any] | str, *fields: str, end: str = "\n") -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    return end.join([*fields, f"data: {text}", "", ""])


async def test_events_over_the_limit_on_a_shared_stream_are_replaced_or_dropped_and_others_pass(
    make_client: Callable[[], httpx2.AsyncClient],
) -> None:
    big = "y" * (4 * LIMIT)
    stream = "".join(
        [
            _event({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}, end="\r\n"),
            _event({"jsonrpc": "2.0", "id": 9, "result": {"text": big}}, "id: e2"),
            ": a comment\n",
            _event({"params": {"data": big}, "jsonrpc": "2.0", "method": "notifications/message"}, "id: e3"),
            _event({"result": {"text": big}, "jsonrpc": "2.0", "id": "ten"}, end="\r"),
            _event("[" + big + "]"),
            _event({"jsonrpc": "2.0", "id": 11, "result": {}}, "event: message", "id: e5"),
        ]
    ).encode()

    def pieces() -> list[bytes]:  # odd sizes, so terminators and fields are split across reads
        return [stream[i : i + 997] for i in range(0, len(stream), 997)]

    async with (
        serve(SSE_HEAD, pieces) as server,
        make_client() as http,
        asyncio.timeout(WAIT),
        http.stream("GET", server.url) as response,
    ):
        events = [event async for event in httpx2.EventSource(response, max_event_size=LIMIT)]
    assert [(e.id, e.data and json.loads(e.data).get("method")) for e in events] == [
        ("", "notifications/progress"),
        ("e2", None),
        ("e3", ""),  # dropped; only its id is kept for resumption
        ("e3", None),
        ("e5", None),
    ]
    assert _error(events[1].data) == (9, MESSAGE_TOO_LARGE)
    assert _error(events[3].data) == ("ten", MESSAGE_TOO_LARGE)
    assert json.loads(events[4].data) == {"jsonrpc": "2.0", "id": 11, "result": {}}


async def test_an_event_over_the_limit_on_a_requests_stream_ends_that_request(
    make_client: Callable[[], httpx2.AsyncClient],
) -> None:
    stream = (_event("{" + "z" * (2 * LIMIT)) + _event({"jsonrpc": "2.0", "id": 5, "result": {}})).encode()
    async with (
        serve(SSE_HEAD, stream) as server,
        make_client() as http,
        asyncio.timeout(WAIT),
        http.stream("POST", server.url, json=REQUEST) as response,
    ):
        events = [event async for event in httpx2.EventSource(response, max_event_size=LIMIT)]
    assert [_error(event.data) for event in events[:1]] == [(5, MESSAGE_TOO_LARGE)]
    assert len(events) == 2


async def test_another_body_over_the_limit_fails_as_a_protocol_error(
    make_client: Callable[[], httpx2.AsyncClient],
) -> None:
    body = b"x" * (2 * LIMIT)
    head = f"HTTP/1.1 502 Bad Gateway\r\ncontent-length: {len(body)}\r\ncontent-type: text/html\r\n\r\n"
    async with serve(head, body) as server, make_client() as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.post(server.url, json=REQUEST)
