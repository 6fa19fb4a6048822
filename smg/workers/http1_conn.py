"""One HTTP/1.1 connection of the lean worker client (`smg.workers.http1`): an asyncio protocol driving
httptools' response parser through an explicit state machine (docs/adr/0009-lean-worker-client.md).

    IDLE --send--> AWAITING_HEAD --final head--> READING_BODY --complete--> DONE --to_idle--> IDLE
     any state --> CLOSED   (closed by either side, broken, or condemned)

Informational (1xx) heads are skipped in AWAITING_HEAD; ``101 Switching Protocols`` and a status below 100
are protocol errors.
A byte arriving in IDLE or DONE (a response nobody asked for, or one more after the answer) condemns the
connection: it is closed and never pooled again, and the complete answer it already gave stands.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from enum import Enum
from typing import NoReturn

import httptools

from smg.errors import UpstreamConnectError, UpstreamError, UpstreamProtocolError

HIGH_WATER = 64 * 1024  # buffered body bytes before the socket is paused


class State(Enum):
    IDLE = "idle"  # no exchange: nothing may arrive
    AWAITING_HEAD = "awaiting head"  # the request is out; informational heads are skipped
    READING_BODY = "reading body"  # the final head arrived
    DONE = "done"  # the final response is complete: nothing more may arrive
    CLOSED = "closed"


# Module names: the hot path compares members by identity, without an attribute lookup on the class.
IDLE, AWAITING_HEAD, READING_BODY = State.IDLE, State.AWAITING_HEAD, State.READING_BODY
DONE, CLOSED = State.DONE, State.CLOSED


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing at once."""


class Connection(asyncio.Protocol):
    """One connection, one exchange at a time. Per exchange: ``status`` and ``content_type`` of the final
    head (``status`` 0 until it arrived), body bytes in ``chunks``, ``complete`` once the body ended,
    ``error`` once the exchange broke, ``received`` once any byte of an answer arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.state = IDLE
        self.reused = False  # taken from the pool: it carried an exchange before
        self.idle_since = 0.0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        # One timer per connection, not per wait: it is re-armed only when it fires before the deadline
        # of the wait then current (call_at and cancel cost more than the rest of a wait).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when the armed timer fires
        self._deadline = 0.0  # the current wait's
        self._poll = select.poll()
        self.chunks: deque[bytes] = deque()  # emptied by to_idle(): a pooled connection holds no bytes
        self.buffered = 0
        self._begin_exchange()

    def _begin_exchange(self) -> None:
        self.parser = httptools.HttpResponseParser(self)  # fresh per exchange: no state carried over
        self.status = 0
        self.content_type = "application/json"
        self.sized = False  # Content-Length or chunked: the end of the body is known without EOF
        self.keep_alive = False
        self.received = False
        self.complete = False
        self.error: UpstreamError | None = None

    # the exchange, driven by the client
    def send(self, request: bytes) -> None:
        """Starts an exchange (IDLE -> AWAITING_HEAD). Raises RuntimeError unless the connection is idle:
        one exchange at a time.

        The request is written at the end of the event loop's current step (``call_soon``), not now: the
        requests of one step (every request whose body arrived in the same batch) reach the workers in
        one burst, so a worker is woken once per burst rather than once per request (docs/adr/0009).
        A connection closed before then (cancelled, broken) writes nothing."""
        if self.state is not IDLE:
            raise _illegal(self.state, AWAITING_HEAD)
        self.state = AWAITING_HEAD
        self._begin_exchange()
        assert self.transport is not None
        self.loop.call_soon(self._write, request)

    def _write(self, request: bytes) -> None:
        if self.state is not CLOSED and self.transport is not None:  # closed meanwhile: nothing to send
            self.transport.write(request)

    def to_idle(self) -> None:
        """DONE -> IDLE: the complete answer was handed over; from now on any byte condemns it."""
        if self.state is not DONE:
            raise _illegal(self.state, IDLE)
        self.state = IDLE
        self.chunks.clear()
        self.buffered = 0
        if self.paused:  # a paused socket would hide bytes that arrive while idle
            self.resume()

    def has_input(self) -> bool:
        """Bytes, an end of stream or an error wait in the socket, not yet delivered by the loop."""
        return bool(self._poll.poll(0))

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and self.state is not CLOSED:
            self.transport.resume_reading()

    def close(self) -> None:
        """Any state -> CLOSED."""
        self.state = CLOSED
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:  # it would keep a closed connection alive until it fires
            self._timer.cancel()
            self._timer = None

    async def wait(self, deadline: float) -> None:
        """Until the next parser event, the connection's end, or ``deadline`` (loop time): TimeoutError."""
        self._deadline = deadline
        timer = self._timer
        if timer is None or self._timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline
        w = self.waiter = self.loop.create_future()
        try:
            await w
        finally:
            self.waiter = None

    def _on_timer(self) -> None:
        """Times out the wait in progress when this timer was armed for its deadline; a wait with a later
        deadline re-arms it. With no wait in progress it lapses (the next wait arms one)."""
        self._timer = None
        w = self.waiter
        if w is None or w.done():
            return
        if self._deadline <= self._timer_at:
            w.set_exception(TimeoutError())
        else:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            self._timer_at = self._deadline

    def _fail(self, error: UpstreamError) -> None:
        """Closes the connection; ``error`` is the exchange's unless its answer was already complete."""
        if not self.complete and self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _stop(self, error: UpstreamError | None) -> NoReturn:
        if error is not None and self.error is None:
            self.error = error
        raise _Stop

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # create_connection gives a Transport
        self._poll.register(transport.get_extra_info("socket").fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is AWAITING_HEAD or state is READING_BODY:
            self.received = True
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                self._fail(UpstreamProtocolError(f"invalid HTTP response: {exc}"))
        elif state is not CLOSED:  # IDLE or DONE: bytes nobody asked for; the answer given stands
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        if state is READING_BODY and not self.sized and self.error is None:
            self.complete = True  # the body ends with the connection
        elif (state is AWAITING_HEAD or state is READING_BODY) and self.error is None:
            cls = UpstreamProtocolError if state is READING_BODY else UpstreamConnectError
            self.error = cls("the connection closed before the response was complete")
        self.state = CLOSED
        self._cancel_timer()
        self._wake()

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.state is not AWAITING_HEAD:  # a response after the answer was complete
            self._stop(None)
        self.content_type = "application/json"  # a final head's headers only, never an informational one's
        self.sized = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-type":
            self.content_type = value.decode("latin-1")
        elif lname == b"content-length" or (lname == b"transfer-encoding" and b"chunked" in value.lower()):
            self.sized = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status < 100 or status == 101:  # not HTTP, or a switch to another protocol
                self._stop(UpstreamProtocolError(f"the worker answered status {status}"))
            return  # informational: the final head is still to come
        if self.state is not AWAITING_HEAD:
            raise _illegal(self.state, READING_BODY)
        self.state = READING_BODY
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()  # Connection: close, HTTP/1.0
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.state is AWAITING_HEAD:  # the end of an informational response
            return
        if self.state is not READING_BODY:
            raise _illegal(self.state, DONE)
        self.state = DONE
        self.complete = True
        self._wake()


def _illegal(state: State, to: State) -> RuntimeError:
    return RuntimeError(f"a connection cannot move from {state.value} to {to.value}")
