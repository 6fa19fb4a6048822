"""The lean HTTP/1.1 worker client against the scripted worker and a raw asyncio server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest

from smg.errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from smg.settings import BreakerSettings
from smg.testing.worker import RunningWorker
from smg.workers import http1
from smg.workers.breaker import CircuitBreaker
from smg.workers.client import WorkerClient
from smg.workers.worker import Worker
from tests.workers._raw_http import HEAD, client, raw_server
from tests.workers._raw_http import read_request as _read_request
from tests.workers._raw_http import worker as _worker

BODY = orjson.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]})


async def test_keeps_one_connection_alive_across_requests(worker: RunningWorker) -> None:
    w = _worker(worker.url)
    async with client() as c:
        for _ in range(3):
            async with c.post(w, "/v1/chat/completions", BODY, HEAD, stream=False) as r:
                assert r.status == 200
                assert r.content_type.startswith("application/json")
                assert orjson.loads(await r.read())["object"] == "chat.completion"
        assert len(c._open) == 1


async def test_streams_chunked_bodies_as_they_arrive() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n")
            await writer.drain()
            await release.wait()
            writer.write(b"6\r\ndata:2\r\n0\r\n\r\n")
            await writer.drain()

    async with raw_server(handler) as (url, conns), client() as c:
        async with asyncio.timeout(5):
            async with c.post(_worker(url), "/x", BODY, HEAD, stream=True) as r:
                chunks = r.iter_chunks()
                assert await anext(chunks) == b"data:1"  # before the second chunk was written
                release.set()
                assert [x async for x in chunks] == [b"data:2"]
            async with c.post(_worker(url), "/x", BODY, HEAD, stream=True) as r:
                release.set()
                assert await r.read() == b"data:1data:2"
        assert len(conns) == 1


async def test_connection_close_is_honoured_and_a_body_can_end_with_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
        await writer.drain()

    async with raw_server(handler) as (url, conns), client() as c:
        for _ in range(2):
            async with c.post(_worker(url), "/x", BODY, HEAD, stream=False) as r:
                assert await r.read() == b"until-eof"
        assert len(conns) == 2


async def test_a_reset_mid_body_is_a_protocol_error_and_the_connection_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.transport.abort()

    async with raw_server(handler) as (url, conns), client() as c:
        w = _worker(url)
        for _ in range(2):
            with pytest.raises(UpstreamProtocolError) as info:
                async with c.post(w, "/x", BODY, HEAD, stream=False) as r:
                    await r.read()
            assert info.value.worker == url
        assert len(conns) == 2 and not c._open


async def test_a_garbage_status_line_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with raw_server(handler) as (url, _), client() as c:
        with pytest.raises(UpstreamProtocolError):
            async with c.post(_worker(url), "/x", BODY, HEAD, stream=False):
                pass


async def test_refused_connections_and_silent_workers_map_to_connect_error_and_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(silent) as (url, _):
        pass  # closed: its port now refuses connections
    async with client(secs=0.3) as c:
        with pytest.raises(UpstreamConnectError):
            async with c.post(_worker(url), "/x", BODY, HEAD, stream=False):
                pass
    async with raw_server(silent) as (url, _), client(secs=0.3) as c:
        for stream in (False, True):
            with pytest.raises(UpstreamTimeout):
                async with c.post(_worker(url), "/x", BODY, HEAD, stream=stream):
                    pass


async def test_a_kept_alive_connection_the_worker_closed_is_replaced_once() -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # reads the next request's head, then closes unanswered

    async with raw_server(one_per_connection) as (url, conns), client() as c:
        w = _worker(url)
        for _ in range(3):
            async with asyncio.timeout(5), c.post(w, "/x", BODY, HEAD, stream=False) as r:
                assert await r.read() == b"ok"
        assert len(conns) == 3


async def test_close_ends_every_pooled_connection() -> None:
    ended = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        assert await reader.read() == b""
        ended.set()

    async with raw_server(handler) as (url, _):
        async with client() as c, c.post(_worker(url), "/x", BODY, HEAD, stream=False) as r:
            await r.read()
        async with asyncio.timeout(5):
            await ended.wait()


async def test_idle_connections_are_closed_after_the_keep_alive_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "KEEPALIVE_SECS", 0.05)
    ended = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        assert await reader.read() == b""
        ended.set()

    async with raw_server(handler) as (url, _), client() as c:
        async with c.post(_worker(url), "/x", BODY, HEAD, stream=False) as r:
            await r.read()
        async with asyncio.timeout(5):
            await ended.wait()
        assert not c._open  # the sweep forgot it before closing it


async def test_a_large_body_read_slowly_arrives_whole() -> None:
    piece = b"x" * 65536

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(32):  # 2 MiB: past the read buffer's limit, so reading pauses and resumes
                writer.write(b"10000\r\n" + piece + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(10):
        for _ in range(2):
            got = 0
            async with c.post(_worker(url), "/x", BODY, HEAD, stream=True) as r:
                async for chunk in r.iter_chunks():
                    got += len(chunk)
                    await asyncio.sleep(0.001)
            assert got == 32 * 65536
        assert len(conns) == 1


def _answering_ok(
    heads: list[bytes],
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A raw worker that answers every request ``ok`` and keeps each request's head in ``heads``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            heads.append(await _read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    return handler


async def test_a_control_character_in_a_header_is_refused_before_anything_is_sent_and_a_tab_is_kept() -> None:
    heads: list[bytes] = []
    handler = _answering_ok(heads)

    async with (
        raw_server(handler) as (url, _),
        WorkerClient(request_timeout_secs=5) as wc,
        asyncio.timeout(5),
    ):
        for bad in ("a\x01b", "a\x7fb", "a\rb"):
            with pytest.raises(ValueError, match="X-Test"):
                async with wc.post(_worker(url), "/x", BODY, headers={"X-Test": bad}, stream=False):
                    pass
        async with wc.post(_worker(url), "/x", BODY, headers={"X-Test": "a\tb"}, stream=False) as r:
            assert await r.read() == b"ok"
    [head] = heads
    assert b"\r\nX-Test: a\tb\r\n" in head


async def test_header_lines_go_out_as_aiohttp_orders_them_with_the_workers_key_over_a_callers() -> None:
    heads: list[bytes] = []
    handler = _answering_ok(heads)

    sent = [
        {"X-Request-Id": "r1"},
        {"Content-Type": "application/json", "Accept": "text/plain", "Authorization": "Bearer caller"},
    ]
    async with (
        raw_server(handler) as (url, _),
        WorkerClient(request_timeout_secs=5) as wc,
        asyncio.timeout(5),
    ):
        keyed = Worker(url, CircuitBreaker(BreakerSettings()), api_key="sk-upstream")
        for headers in sent:
            async with wc.post(keyed, "/x", BODY, headers=headers, stream=False) as r:
                assert await r.read() == b"ok"
    lines = [head.split(b"\r\n\r\n")[0].split(b"\r\n")[3:] for head in heads]  # past Host, Content-Length
    assert lines == [
        [
            b"Accept: */*",
            b"Accept-Encoding: identity",
            b"X-Request-Id: r1",
            b"Content-Type: application/octet-stream",
            b"Authorization: Bearer sk-upstream",
        ],
        [
            b"Accept: text/plain",
            b"Accept-Encoding: identity",
            b"Content-Type: application/json",
            b"Authorization: Bearer sk-upstream",
        ],
    ]


async def test_each_wait_times_out_at_its_own_deadline_on_the_connections_one_timer() -> None:
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(await chunks.get())

    async with (
        raw_server(handler) as (url, _),
        client() as c,
        asyncio.timeout(5),
        c.post(_worker(url), "/x", BODY, HEAD, stream=True) as r,
    ):
        conn, loop = r._conn, asyncio.get_running_loop()
        chunks.put_nowait(b"6\r\ndata:1\r\n")
        await conn.wait(loop.time() + 0.2)  # woken by data:1; its timer stays armed
        # The next chunk comes after that timer fired: the wait with the later deadline goes on.
        loop.call_later(0.4, chunks.put_nowait, b"6\r\ndata:2\r\n")
        await conn.wait(loop.time() + 3)
        assert list(conn.chunks) == [b"data:1", b"data:2"]
        with pytest.raises(TimeoutError):  # a deadline before the armed timer's holds
            await conn.wait(loop.time() + 0.1)
        chunks.put_nowait(b"6\r\ndata:3\r\n")
        await conn.wait(loop.time() + 0.2)
        with pytest.raises(TimeoutError):  # nothing comes: the last timer fires, re-arms, then times out
            await conn.wait(loop.time() + 0.4)
