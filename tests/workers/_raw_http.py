"""Raw asyncio HTTP servers on 127.0.0.1 for the lean worker client's tests: each handler writes exactly
the bytes a test needs, including the ones a well-behaved server never would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import orjson

from smg.settings import BreakerSettings
from smg.workers.breaker import CircuitBreaker
from smg.workers.http1 import Http1Client
from smg.workers.worker import Worker

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"Content-Type: application/json\r\n"


def worker(url: str) -> Worker:
    return Worker(url, CircuitBreaker(BreakerSettings()))


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One whole request (head and Content-Length body); IncompleteReadError at the end of the stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


def named(name: str) -> bytes:
    """A request body naming its sender; `answer` echoes the name back."""
    return orjson.dumps({"name": name})


def answer(request: bytes) -> bytes:
    """A complete 200 response naming the request it answers."""
    name = orjson.loads(request.split(b"\r\n\r\n", 1)[1])["name"]
    return answer_for(name)


def answer_for(name: str) -> bytes:
    body = b'{"answer":"for request ' + name.encode() + b'"}'
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def body_for(name: str) -> bytes:
    return answer_for(name).split(b"\r\n\r\n", 1)[1]


async def serve_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with `answer`, until the client closes it."""
    while True:
        writer.write(answer(await read_request(reader)))
        await writer.drain()


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """Serves ``handler`` per connection; yields the URL and a list that counts connections."""
    conns: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", conns
        server.close()


@asynccontextmanager
async def client(secs: float = 5.0) -> AsyncIterator[Http1Client]:
    c = Http1Client(request_timeout_secs=secs, connect_timeout_secs=2.0)
    try:
        yield c
    finally:
        c.close()


async def exchange(c: Http1Client, url: str, name: str, *, stream: bool = False) -> tuple[int, str, bytes]:
    """POST a request naming ``name``; the final status, content type and whole body."""
    async with c.post(worker(url), "/x", named(name), HEAD, stream=stream) as r:
        return r.status, r.content_type, await r.read()
