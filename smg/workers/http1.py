"""A lean HTTP/1.1 client for gateway -> worker POSTs over plain http: asyncio protocols, httptools,
keep-alive connections pooled per worker origin (docs/adr/0009-lean-worker-client.md). Errors map as
aiohttp's do in `smg.workers.client`."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httptools
from yarl import URL

from smg.errors import UpstreamConnectError, UpstreamError, UpstreamProtocolError, UpstreamTimeout
from smg.workers.worker import Worker

_HIGH_WATER = 256 * 1024  # buffered body bytes before the socket is paused
KEEPALIVE_SECS = 15.0  # an idle connection is closed after this long (aiohttp's default too)


class _Conn(asyncio.Protocol):
    """One connection; one exchange at a time. ``error`` is set once it broke."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.content_type = "application/json"
        self.sized = False  # Content-Length or chunked: the end of the body is known without EOF
        self.seen = False  # any byte of the response arrived
        self.headers_done = self.done = self.keep_alive = False
        self.error: UpstreamError | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.seen = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.done:  # garbage after a complete answer only ends the connection
                self.error = self.error or UpstreamProtocolError(f"invalid HTTP response: {exc}")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.sized and not self.done and self.error is None:
            self.done = True  # the body ends with the connection
        elif not self.done and self.error is None:
            cls = UpstreamProtocolError if self.headers_done else UpstreamConnectError
            self.error = cls("the connection closed before the response was complete")
        self._wake()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-type":
            self.content_type = value.decode("latin-1")
        elif lname == b"content-length" or (lname == b"transfer-encoding" and b"chunked" in value.lower()):
            self.sized = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # Connection: close, HTTP/1.0
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, deadline: float) -> None:
        """Until the next parser event, the connection's end, or ``deadline`` (loop time)."""
        w = self.waiter = self.loop.create_future()
        timer = self.loop.call_at(deadline, _expire, w)
        try:
            await w
        finally:
            timer.cancel()
            self.waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(w: asyncio.Future[None]) -> None:
    if not w.done():
        w.set_exception(TimeoutError())


class Http1Response:
    """An open worker response: status and headers arrived, the body has not been read."""

    def __init__(self, conn: _Conn, worker: Worker, read_timeout: float | None, deadline: float) -> None:
        self._conn = conn
        self.worker = worker
        self.status = conn.status
        self.content_type = conn.content_type
        self._read_timeout = read_timeout  # per read (streams); else the exchange's ``deadline``
        self._deadline = deadline

    async def _next(self) -> bytes | None:
        """The next body bytes (all that is buffered), or None at the end of the body."""
        c = self._conn
        while not c.chunks:
            if c.error is not None:
                raise c.error
            if c.done:
                return None
            t = self._read_timeout
            await c.wait(self._deadline if t is None else c.loop.time() + t)
        data = c.chunks.popleft() if len(c.chunks) == 1 else b"".join(c.chunks)
        c.chunks.clear()
        if c.buffered > _HIGH_WATER and c.transport is not None and not c.closed:
            c.transport.resume_reading()
        c.buffered = 0
        return data

    async def read(self) -> bytes:
        parts = []
        try:
            while (data := await self._next()) is not None:
                parts.append(data)
        except _FAILURES as exc:
            raise _mapped(exc, self.worker.url) from exc
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            while (data := await self._next()) is not None:
                yield data
        except _FAILURES as exc:
            raise _mapped(exc, self.worker.url) from exc


def _mapped(exc: BaseException, url: str) -> UpstreamError:
    """The error the caller sees, naming the worker (the same types and codes as for aiohttp)."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"worker {url} timed out", worker=url)
    if isinstance(exc, UpstreamProtocolError):
        return UpstreamProtocolError(f"worker {url} broke the response", worker=url)
    return UpstreamConnectError(f"worker {url} is unreachable", worker=url)


_FAILURES = (UpstreamError, OSError, TimeoutError)


class Http1Client:
    """Pooled HTTP/1.1 connections per worker origin (at most ``max_idle`` idle ones kept each)."""

    def __init__(self, *, request_timeout_secs: float, connect_timeout_secs: float, max_idle: int = 256):
        self._request_timeout = request_timeout_secs
        self._connect_timeout = connect_timeout_secs
        self._max_idle = max_idle
        self._idle: dict[str, deque[_Conn]] = {}
        self._origins: dict[str, tuple[str, int, bytes, str]] = {}
        self._open: set[_Conn] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def _origin(self, base: str) -> tuple[str, int, bytes, str]:
        o = self._origins.get(base)
        if o is None:
            u = URL(base)
            host, port = u.raw_host or "", u.port or 80
            shown = f"[{host}]" if ":" in host else host
            hostport = shown if port == 80 else f"{shown}:{port}"
            o = self._origins[base] = (host, port, hostport.encode("idna"), u.raw_path.rstrip("/"))
        return o

    async def _connect(self, base: str, loop: asyncio.AbstractEventLoop) -> _Conn:
        host, port, _, _ = self._origin(base)
        async with asyncio.timeout(self._connect_timeout):
            _, conn = await loop.create_connection(lambda: _Conn(loop), host, port)
        self._open.add(conn)
        return conn

    def _take(self, base: str) -> _Conn | None:
        idle = self._idle.get(base)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
            self._open.discard(conn)
        return None

    def _release(self, base: str, conn: _Conn) -> None:
        idle = self._idle.setdefault(base, deque())
        reusable = conn.done and conn.error is None and not conn.closed and conn.keep_alive
        if reusable and len(idle) < self._max_idle:
            conn.idle_since = conn.loop.time()
            idle.append(conn)
            if self._sweeper is None:
                self._sweeper = conn.loop.call_later(KEEPALIVE_SECS, self._sweep)
        else:
            conn.close()
            self._open.discard(conn)

    def _sweep(self) -> None:
        """Close connections idle for KEEPALIVE_SECS (or closed by their worker); runs while any idle."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - KEEPALIVE_SECS
        for idle in self._idle.values():
            for conn in [c for c in idle if c.closed or c.idle_since <= cutoff]:
                idle.remove(conn)
                conn.close()
                self._open.discard(conn)
        if any(self._idle.values()):
            self._sweeper = loop.call_later(KEEPALIVE_SECS, self._sweep)

    @asynccontextmanager
    async def post(
        self, worker: Worker, path: str, body: bytes, head: bytes, *, stream: bool
    ) -> AsyncIterator[Http1Response]:
        """POST ``body`` with header lines ``head`` (CRLF-terminated); yields once headers arrived."""
        loop = asyncio.get_running_loop()
        base = worker.url
        _, _, hostport, prefix = self._origin(base)
        start = loop.time()
        deadline = start + self._request_timeout  # the whole exchange (non-streaming)
        request = b"".join(
            (b"POST ", (prefix + path).encode(), b" HTTP/1.1\r\nHost: ", hostport,
             b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n", head, b"\r\n", body)
        )  # fmt: skip
        conn = None
        try:
            for fresh in (False, True):
                conn = None if fresh else self._take(base)
                if conn is None:
                    connect = self._connect(base, loop)
                    conn = await (connect if stream else asyncio.wait_for(connect, deadline - start))
                conn.reset()
                assert conn.transport is not None
                conn.transport.write(request)
                try:
                    while not conn.headers_done:
                        if conn.error is not None:
                            raise conn.error
                        await conn.wait(loop.time() + self._request_timeout if stream else deadline)
                    break
                except BaseException as exc:
                    conn.close()
                    self._open.discard(conn)
                    # A kept-alive connection the worker closed without a byte of an answer (it had
                    # not seen the request): once more on a fresh connection.
                    if not (isinstance(exc, UpstreamConnectError) and conn.reused and not conn.seen):
                        raise
        except _FAILURES as exc:
            raise _mapped(exc, worker.url) from exc
        assert conn is not None
        try:
            yield Http1Response(conn, worker, self._request_timeout if stream else None, deadline)
        finally:
            self._release(base, conn)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self._open:
            conn.close()
        self._open.clear()
        self._idle.clear()
