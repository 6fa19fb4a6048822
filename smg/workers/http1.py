"""A lean HTTP/1.1 client for gateway -> worker POSTs over plain http: asyncio protocols, httptools,
keep-alive connections pooled per worker origin (docs/adr/0009-lean-worker-client.md). Each connection
is a state machine (`smg.workers.http1_conn`); one is pooled again only from its idle state. Errors map
as aiohttp's do in `smg.workers.client`."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from yarl import URL

from smg.errors import UpstreamConnectError, UpstreamError, UpstreamProtocolError, UpstreamTimeout
from smg.workers.http1_conn import DONE, HIGH_WATER, IDLE, Connection
from smg.workers.worker import Worker

KEEPALIVE_SECS = 15.0  # an idle connection is closed after this long (aiohttp's default too)


class Http1Response:
    """One POST exchange, made by `Http1Client.post`; an async context manager. Entering sends the request
    and returns once the final head arrived (``status`` and ``content_type`` are set, the body is unread);
    leaving releases the connection. A plain class rather than a generator-based context manager, and the
    pool's loop inlined in ``__aenter__``: every layer costs CPU on each request (docs/adr/0009)."""

    _conn: Connection  # set on entering

    def __init__(self, client: Http1Client, worker: Worker, request: bytes, *, stream: bool) -> None:
        self._client = client
        self.worker = worker
        self._request = request
        self._stream = stream
        self.status = 0
        self.content_type = "application/json"
        # per read (streams); else the exchange's ``deadline``
        self._read_timeout = client.request_timeout if stream else None
        self._deadline = 0.0

    async def __aenter__(self) -> Http1Response:
        """Sends the request on a pooled connection to the worker or a new one. Raises
        UpstreamConnectError, UpstreamTimeout or UpstreamProtocolError naming the worker."""
        client, base, request, stream = self._client, self.worker.url, self._request, self._stream
        pooled = client._take(base)
        # A pooled connection's loop is the running one: asking for it costs a system call (getpid) on
        # Python 3.11.
        loop = pooled.loop if pooled is not None else asyncio.get_running_loop()
        deadline = self._deadline = loop.time() + client.request_timeout  # the whole exchange (non-streaming)
        try:
            for fresh in (False, True):
                conn = None if fresh else pooled
                if conn is None:
                    connect = client._connect(base, loop)
                    conn = await (connect if stream else asyncio.wait_for(connect, client.request_timeout))
                try:
                    conn.send(request)
                    while conn.status == 0:  # no final head yet
                        if conn.error is not None:
                            raise conn.error
                        await conn.wait(loop.time() + client.request_timeout if stream else deadline)
                    break
                except BaseException as exc:
                    client._discard(conn)
                    # Sent once more on a fresh connection only when a pooled one ended without a byte
                    # of an answer (docs/adr/0009-lean-worker-client.md says why that is safe).
                    if not (isinstance(exc, UpstreamConnectError) and conn.reused and not conn.received):
                        raise
        except _FAILURES as exc:
            raise _mapped(exc, base) from exc
        assert conn is not None  # the loop ends by its break, with a connection, or raises
        self._conn = conn
        self._request = b""  # sent: a stream may last as long as its reader is slow
        self.status = conn.status
        self.content_type = conn.content_type
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client._release(self.worker.url, self._conn)

    async def _next(self) -> bytes | None:
        """The next body bytes (what is buffered, in pieces of about `HIGH_WATER` bytes), or None at the
        end of the body."""
        c = self._conn
        while not c.chunks:
            if c.error is not None:
                raise c.error
            if c.complete:
                return None
            t = self._read_timeout
            await c.wait(self._deadline if t is None else c.loop.time() + t)
        if c.buffered <= HIGH_WATER:
            data = c.chunks.popleft() if len(c.chunks) == 1 else b"".join(c.chunks)
            c.chunks.clear()
            c.buffered = 0
        else:  # no copy of all of it at once: a slow reader would hold it twice
            parts = [c.chunks.popleft()]
            size = len(parts[0])
            while c.chunks and size < HIGH_WATER:
                parts.append(c.chunks.popleft())
                size += len(parts[-1])
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            c.buffered -= size
        if c.paused and c.buffered <= HIGH_WATER:
            c.resume()
        return data

    async def read(self) -> bytes:
        """The whole body. Raises UpstreamError subclasses naming the worker."""
        c = self._conn
        if c.complete and c.error is None:  # all of it is buffered already (usual for a small answer)
            chunks = c.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            c.buffered = 0
            if c.paused:
                c.resume()
            return body
        parts = []
        try:
            while (data := await self._next()) is not None:
                parts.append(data)
        except _FAILURES as exc:
            raise _mapped(exc, self.worker.url) from exc
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive. Raises UpstreamError subclasses naming the worker."""
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
        self.request_timeout = request_timeout_secs
        self._connect_timeout = connect_timeout_secs
        self._max_idle = max_idle
        self._idle: dict[str, deque[Connection]] = {}
        self._origins: dict[str, tuple[str, int, bytes, str]] = {}
        self._open: set[Connection] = set()
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

    async def _connect(self, base: str, loop: asyncio.AbstractEventLoop) -> Connection:
        host, port, _, _ = self._origin(base)
        async with asyncio.timeout(self._connect_timeout):
            _, conn = await loop.create_connection(lambda: Connection(loop), host, port)
        self._open.add(conn)
        return conn

    def _take(self, base: str) -> Connection | None:
        """The most recently pooled connection that is idle with nothing in its socket; any other is
        closed on the way."""
        idle = self._idle.get(base)
        while idle:
            conn = idle.pop()
            if conn.state is IDLE and not conn.has_input():
                conn.reused = True
                return conn
            self._discard(conn)
        return None

    def _release(self, base: str, conn: Connection) -> None:
        """Pools ``conn`` when its answer is complete and the worker keeps it alive; closes it otherwise
        (mid-body, broken, condemned, ``Connection: close``, or the pool is full)."""
        idle = self._idle.get(base)
        if idle is None:
            idle = self._idle[base] = deque()
        if conn.state is DONE and conn.keep_alive and len(idle) < self._max_idle:
            conn.to_idle()
            conn.idle_since = conn.loop.time()
            idle.append(conn)
            if self._sweeper is None:
                self._sweeper = conn.loop.call_later(KEEPALIVE_SECS, self._sweep)
        else:
            self._discard(conn)

    def _discard(self, conn: Connection) -> None:
        conn.close()
        # Its body bytes go now: parser and connection refer to each other, so without this they would
        # wait for a full collection of the cyclic garbage collector (rare: gc thresholds in smg.cli.launch).
        conn.chunks.clear()
        conn.buffered = 0
        self._open.discard(conn)

    def _sweep(self) -> None:
        """Close connections idle for KEEPALIVE_SECS (or closed by their worker); runs while any idle."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - KEEPALIVE_SECS
        for idle in self._idle.values():
            for conn in [c for c in idle if c.state is not IDLE or c.idle_since <= cutoff]:
                idle.remove(conn)
                self._discard(conn)
        if any(self._idle.values()):
            self._sweeper = loop.call_later(KEEPALIVE_SECS, self._sweep)

    def post(self, worker: Worker, path: str, body: bytes, head: bytes, *, stream: bool) -> Http1Response:
        """The exchange that POSTs ``body`` with header lines ``head`` (CRLF-terminated): ``async with`` it;
        entering returns once the final head arrived.

        Entering raises UpstreamConnectError, UpstreamTimeout or UpstreamProtocolError naming the worker.
        """
        _, _, hostport, prefix = self._origin(worker.url)
        request = b"".join(
            (b"POST ", (prefix + path).encode(), b" HTTP/1.1\r\nHost: ", hostport,
             b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n", head, b"\r\n", body)
        )  # fmt: skip
        return Http1Response(self, worker, request, stream=stream)

    def close(self) -> None:
        """Closes every connection, idle or busy."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self._open:
            conn.close()
        self._open.clear()
        self._idle.clear()
