"""The lean worker client against raw servers that break HTTP/1.1 on purpose: an answer reaches only the
request it belongs to, and a connection is pooled again only from a known idle state."""

from __future__ import annotations

import asyncio

import pytest

from smg.errors import UpstreamConnectError, UpstreamProtocolError
from smg.workers import http1_conn
from tests.workers._raw_http import (
    HEAD,
    answer,
    answer_for,
    body_for,
    client,
    exchange,
    named,
    raw_server,
    read_request,
    serve_answers,
    worker,
)

EARLY_HINTS = (
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nContent-Type: text/html\r\n\r\n"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
OK_A = (200, "application/json", body_for("A"))
OK_B = (200, "application/json", body_for("B"))


@pytest.mark.parametrize(
    "informational", [EARLY_HINTS, CONTINUE, CONTINUE + EARLY_HINTS], ids=["103", "100", "both"]
)
async def test_informational_heads_are_skipped_and_the_next_request_never_sees_the_previous_answer(
    informational: bytes,
) -> None:
    hinted, nudged = asyncio.Event(), asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if hinted.is_set():  # any later connection: the nudge, or a request the client could not pool
            nudged.set()
            await serve_answers(reader, writer)
            return
        first = await read_request(reader)
        writer.write(informational)
        hinted.set()
        # The final answer waits for the client's next bytes on this connection or for another
        # connection: a client that took the informational head as the answer sends B here at once.
        following = asyncio.ensure_future(read_request(reader))
        nudge = asyncio.ensure_future(nudged.wait())
        await asyncio.wait({following, nudge}, return_when=asyncio.FIRST_COMPLETED)
        nudge.cancel()
        writer.write(answer(first))
        while True:
            writer.write(answer(await following))
            following = asyncio.ensure_future(read_request(reader))

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):

        async def a_then_b() -> list[tuple[int, str, bytes]]:
            return [await exchange(c, url, "A"), await exchange(c, url, "B")]

        both = asyncio.create_task(a_then_b())
        await hinted.wait()
        _, nudge = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        nudge.close()
        assert await both == [OK_A, OK_B]
        assert len(conns) == 2  # B went out on A's connection; the other one is the nudge


async def test_headers_of_an_informational_head_do_not_leak_into_the_final_answer() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(EARLY_HINTS + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await reader.read()

    async with raw_server(handler) as (url, _), client() as c, asyncio.timeout(5):
        assert await exchange(c, url, "A") == (200, "application/json", b"ok")


@pytest.mark.parametrize(
    "head",
    [
        b"101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade",
        b"042 Odd\r\nContent-Length: 0",
    ],
    ids=["101", "042"],
)
async def test_a_switch_of_protocols_or_a_status_below_100_is_a_protocol_error_and_the_connection_is_closed(
    head: bytes,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 " + head + b"\r\n\r\n")

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        for _ in range(2):
            with pytest.raises(UpstreamProtocolError):
                await exchange(c, url, "A")
        assert len(conns) == 2 and not c._open


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 13\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 13\r\n",
    ],
    ids=["length-first", "chunked-first"],
)
@pytest.mark.parametrize("informational", [b"", EARLY_HINTS], ids=["plain", "after-103"])
async def test_content_length_with_transfer_encoding_is_a_protocol_error_and_the_connection_is_closed(
    framing: bytes, informational: bytes
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(
                informational + b"HTTP/1.1 200 OK\r\n" + framing + b"\r\nd\r\nfor request A\r\n0\r\n\r\n"
            )

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        for _ in range(2):
            with pytest.raises(UpstreamProtocolError) as info:
                await exchange(c, url, "A")
            assert info.value.worker == url
        assert len(conns) == 2 and not c._open


@pytest.mark.parametrize("stream", [False, True])
async def test_an_extra_response_in_the_same_write_reaches_nobody_and_the_connection_is_closed(
    stream: bool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            writer.write(answer(request) + answer_for("nobody"))

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        assert await exchange(c, url, "A", stream=stream) == OK_A
        assert await exchange(c, url, "B", stream=stream) == OK_B
        assert len(conns) == 2


@pytest.mark.parametrize("released", [False, True], ids=["before-release", "while-pooled"])
async def test_bytes_arriving_after_a_complete_answer_condemn_the_connection(released: bool) -> None:
    answered, dropped = asyncio.Event(), asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if answered.is_set():
            await serve_answers(reader, writer)
            return
        writer.write(answer(await read_request(reader)))
        await answered.wait()
        writer.write(answer_for("nobody"))
        assert await reader.read() == b""  # the client closed it instead of keeping it
        dropped.set()

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        async with c.post(worker(url), "/x", named("A"), HEAD, stream=False) as r:
            assert await r.read() == body_for("A")
            if not released:
                answered.set()
                await dropped.wait()
        if released:
            answered.set()
            await dropped.wait()
        assert await exchange(c, url, "B") == OK_B
        assert len(conns) == 2


async def test_bytes_waiting_in_the_socket_when_an_idle_connection_is_taken_condemn_it() -> None:
    answered, stale = asyncio.Event(), asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if answered.is_set():
            await serve_answers(reader, writer)
            return
        writer.write(answer(await read_request(reader)))
        await answered.wait()
        writer.write(answer_for("nobody"))  # in the client's socket before its loop reads it
        stale.set()
        await serve_answers(reader, writer)

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        assert await exchange(c, url, "A") == OK_A
        answered.set()
        await stale.wait()
        # Resumed before the loop's next read of that socket: the pool must look at the socket itself.
        assert await exchange(c, url, "B") == OK_B
        assert len(conns) == 2


async def test_a_complete_answer_left_unread_past_the_read_buffer_leaves_the_connection_usable() -> None:
    large = b"x" * (http1_conn.HIGH_WATER + 1)  # reading pauses only once the last byte is in

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(large), large))
        await serve_answers(reader, writer)

    async with raw_server(handler) as (url, conns), client(secs=2) as c, asyncio.timeout(5):
        async with c.post(worker(url), "/x", named("A"), HEAD, stream=True) as r:
            conn = r._conn
            while conn.state is not http1_conn.State.DONE:  # the whole body buffered, none of it read
                await conn.wait(conn.loop.time() + 2)
        assert await exchange(c, url, "B") == OK_B
        assert len(conns) == 1


async def test_an_informational_head_counts_as_an_answer_so_a_pooled_request_is_not_sent_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(await read_request(reader)))
        await read_request(reader)
        writer.write(CONTINUE)  # the worker had the request: it must not be sent a second time
        await writer.drain()

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        assert await exchange(c, url, "A") == OK_A
        with pytest.raises(UpstreamConnectError):
            await exchange(c, url, "B")
        assert len(conns) == 1


@pytest.mark.parametrize("sent", [b"", b"HTTP/1.1 2"], ids=["fresh-silent", "pooled-partial"])
async def test_a_post_is_sent_again_only_on_a_pooled_connection_closed_without_a_byte(sent: bytes) -> None:
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if sent:  # answer the first request, then close the second after part of a status line
            writer.write(answer(await read_request(reader)))
        requests.append(await read_request(reader))
        writer.write(sent)
        await writer.drain()

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        if sent:
            assert await exchange(c, url, "A") == OK_A
        with pytest.raises(UpstreamConnectError):
            await exchange(c, url, "B")
        assert len(requests) == 1 and len(conns) == 1


async def test_a_connection_takes_no_second_exchange_before_it_is_released() -> None:
    async with (
        raw_server(serve_answers) as (url, _),
        client() as c,
        asyncio.timeout(5),
        c.post(worker(url), "/x", named("A"), HEAD, stream=False) as r,
    ):
        with pytest.raises(RuntimeError, match="cannot move from"):
            r._conn.send(b"POST /x HTTP/1.1\r\n\r\n")
        assert await r.read() == body_for("A")


async def test_a_response_left_before_its_body_ended_closes_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if b'"A"' in request:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n")  # no end
        else:
            writer.write(answer(request))
        await reader.read()

    async with raw_server(handler) as (url, conns), client() as c, asyncio.timeout(5):
        async with c.post(worker(url), "/x", named("A"), HEAD, stream=True) as r:
            assert await anext(r.iter_chunks()) == b"data:1"
        assert await exchange(c, url, "B") == OK_B
        assert len(conns) == 2


async def test_a_request_is_written_at_the_end_of_the_loop_step_and_not_at_all_once_closed() -> None:
    loop = asyncio.get_running_loop()

    class _Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

        def close(self) -> None:
            pass

    sent, cancelled = http1_conn.Connection(loop), http1_conn.Connection(loop)
    for conn in (sent, cancelled):
        conn.transport = _Transport()  # type: ignore[assignment]
    sent.send(b"POST /a HTTP/1.1\r\n\r\n")
    cancelled.send(b"POST /b HTTP/1.1\r\n\r\n")
    assert sent.transport.written == []  # type: ignore[union-attr]  # not yet: at the end of this step
    cancelled.close()
    await asyncio.sleep(0)
    assert sent.transport.written == [b"POST /a HTTP/1.1\r\n\r\n"]  # type: ignore[union-attr]
    assert cancelled.transport.written == []  # type: ignore[union-attr]
