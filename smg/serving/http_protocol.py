"""The gateway's HTTP/1.1 connection protocol: uvicorn's httptools protocol with bounds on request heads.

A request head is the request line and the header fields. Per connection:

- A head over ``max_head_bytes`` is answered ``431 Request Header Fields Too Large`` with an OpenAI
  error body (code ``request_header_too_large``) and ``Connection: close``, and the connection is
  closed. Bytes are counted only while a head is incomplete, as whole socket reads; when the read that
  crosses the limit also completes the head, the head is measured exactly (request line plus one
  ``name: value`` line per header), so a body arriving in the same read is never counted. The gateway
  holds at most ``max_head_bytes`` plus one read of an unfinished head.
- A head not complete ``head_timeout_secs`` after the connection opened, or after the previous
  response ended on a kept-alive connection, gets the connection closed without an answer. Bytes that
  keep arriving do not extend the deadline. It never closes a connection while one of its requests
  is being served or its response streamed; a body still arriving after its response ended counts
  in the next head's time.

Neither refusal reaches the ASGI application: the edge never sees it, so it is not counted in the
HTTP request metrics.

Writes to the client go out once per step of the event loop (`CoalescingTransport`): a response's head
and body, written by uvicorn as two writes, leave in one system call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from smg.errors import RequestHeadTooLarge
from smg.protocol import error_payload

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope

# The edge's logger: to whoever filters the log, a refused request head is an edge event.
log = logging.getLogger("smg.api")


_Base = HttpToolsProtocol  # per-request overrides call it directly: cheaper than super()


class CoalescingTransport:
    """A transport whose writes made in one step of the event loop reach the socket as one write, at
    the end of that step (a ``call_soon``) or before the next close, whichever comes first; every other
    call goes to the transport as is. A response's head and body, which uvicorn writes separately, cost
    one system call instead of two, and the client is woken once. Bytes keep their order: everything
    written to the connection passes here."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        held = self._held
        if not held:
            self._loop.call_soon(self.flush)
        # Held past this call, so never a buffer the caller may change (a transport copies those too).
        held.append(data if type(data) is bytes else bytes(data))

    def flush(self) -> None:
        held = self._held
        if held:
            self._held = []
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadBoundedProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that enforces `max_head_bytes` and `head_timeout_secs` (see the module
    docstring). Use `head_bounded_protocol` to get a subclass with the limits set.

    Per request this costs a few attribute updates and one clock read: the deadline is a number, and
    one timer per connection checks it (when it fires while a request is being served it looks again
    ``head_timeout_secs`` later).
    """

    max_head_bytes: ClassVar[int] = 65_536
    head_timeout_secs: ClassVar[float] = 10.0

    # A head is awaited from the connection's start and from the end of each request's body.
    _head_open = True
    _head_bytes = 0
    _head_deadline = 0.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._head_deadline = self.loop.time() + self.head_timeout_secs
        self._head_timer = self.loop.call_at(self._head_deadline, self._check_head_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._head_open:
            _Base.data_received(self, data)
            return
        self._head_bytes += len(data)
        _Base.data_received(self, data)
        if self._head_open and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            if self._serving():
                # A head pipelined behind a response in progress: no answer can be written in between.
                self.transport.close()
                return
            log.debug("request head over %d bytes from %s: 431", self.max_head_bytes, self.client)
            self.transport.write(self._refusal(self.server_state.default_headers))
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._head_open = False
        if self._head_bytes > self.max_head_bytes and self._head_size() > self.max_head_bytes:
            log.debug("request head over %d bytes from %s: 431", self.max_head_bytes, self.client)
            # The refusal runs as this request's application, so the body and any pipelined request
            # are handled as uvicorn handles them; its Connection: close ends the connection.
            app, self.app = self.app, self._refuse
            try:
                _Base.on_headers_complete(self)
            finally:
                self.app = app
            return
        _Base.on_headers_complete(self)

    def on_message_complete(self) -> None:
        _Base.on_message_complete(self)
        self._head_open = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        _Base.on_response_complete(self)
        # From here the next head has its time; the rest of a body the application did not read
        # arrives within it too.
        self._head_deadline = self.loop.time() + self.head_timeout_secs

    def _check_head_deadline(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:  # closed, or upgraded
            return
        now = self.loop.time()
        if self._serving():
            when = now + self.head_timeout_secs
        elif now >= self._head_deadline:
            log.debug(
                "no complete request head from %s within %g s: closed", self.client, self.head_timeout_secs
            )
            self.transport.close()
            return
        else:
            when = self._head_deadline
        self._head_timer = self.loop.call_at(when, self._check_head_deadline)

    def _serving(self) -> bool:
        """A request of this connection is being served (the newest one: responses complete in order)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _head_size(self) -> int:
        method = self.parser.get_method()
        line = len(method) + len(self.url) + len(b"  HTTP/1.1\r\n")
        return line + sum(len(name) + len(value) + 4 for name, value in self.headers) + 2

    def _refusal(self, extra: list[tuple[bytes, bytes]]) -> bytes:
        lines = [b"HTTP/1.1 431 Request Header Fields Too Large"]
        lines += [name + b": " + value for name, value in [*extra, *self._refusal_headers()]]
        return b"\r\n".join(lines) + b"\r\n\r\n" + self._refusal_body()

    def _refusal_body(self) -> bytes:
        err = RequestHeadTooLarge(f"the request head exceeds the limit of {self.max_head_bytes} bytes")
        return orjson.dumps(error_payload(err))

    def _refusal_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._refusal_body())).encode()),
            (b"x-smg-error-code", RequestHeadTooLarge.code.encode()),
            (b"connection", b"close"),
        ]

    async def _refuse(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await send({"type": "http.response.start", "status": 431, "headers": self._refusal_headers()})
        await send({"type": "http.response.body", "body": self._refusal_body(), "more_body": False})


def head_bounded_protocol(*, max_head_bytes: int, head_timeout_secs: float) -> type[HeadBoundedProtocol]:
    """A `HeadBoundedProtocol` class with these limits, for ``uvicorn.Config(http=...)``."""

    class Bounded(HeadBoundedProtocol):
        pass

    Bounded.max_head_bytes = max_head_bytes
    Bounded.head_timeout_secs = head_timeout_secs
    return Bounded
