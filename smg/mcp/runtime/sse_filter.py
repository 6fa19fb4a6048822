"""`SseFilter`: a server-sent-event byte stream in, the same stream out, with every event over a byte limit
replaced by a small one, holding at most the limit of any event.

Events within the limit pass unchanged (line terminators become LF). An event over the limit streams
past while only the edges of its data are kept; what replaces it depends on the stream:

- the response stream of one request (``request_id`` given): the request's JSON-RPC error
  ``MESSAGE_TOO_LARGE``, unless the event was a request or notification from the server (dropped);
- a stream of many messages (the GET stream, legacy SSE): that error for the id the event answers when
  its edges show it is a response; otherwise the event is dropped.

A dropped or replaced event keeps its ``id`` field, so resumption still knows where the stream is.
Comment lines pass at once and never count towards an event, as in the SSE parser that reads them.
"""

from __future__ import annotations

import logging

from mcp.types import RequestId

from smg.mcp.runtime.framing import Ended, Kind, Line, LineSplitter, Oversized, Started, too_large

__all__ = ["SseFilter"]

logger = logging.getLogger("smg.mcp")
_EDGE = 4096
_MAX_FIELD = 256  # bytes of an oversized event's `event` and `id` values that are kept


class _BigEvent:
    """What is kept of an event over the limit: the edges of its data, its name, its id, its size."""

    def __init__(self) -> None:
        self.head: bytes | None = None
        self.tail = b""
        self.size = 0
        self.event = b""
        self.id: bytes | None = None

    def line(self, line: bytes) -> None:
        self.size += len(line)
        name, value = _field(line)
        if name == b"data":
            self.data(value[:_EDGE], value[-_EDGE:])
        elif name == b"event":
            self.event = value[:_MAX_FIELD]
        elif name == b"id" and b"\0" not in value and len(value) <= _MAX_FIELD:
            self.id = value

    def data(self, head: bytes, tail: bytes) -> None:
        if self.head is None:
            self.head = head
        self.tail = tail


def _field(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name, value[1:] if value.startswith(b" ") else value


class SseFilter:
    """Feed it the body's bytes; it returns the bytes to pass on. ``name`` names the server in logs."""

    def __init__(self, limit: int, *, request_id: RequestId | None, name: str) -> None:
        self._limit = limit
        self._request_id = request_id
        self._name = name
        self._lines = LineSplitter(limit, cr=True)
        self._kept: list[bytes] = []
        self._size = 0
        self._big: _BigEvent | None = None
        self._long: tuple[bytes, int] | None = None  # field name and value offset of a line over the limit

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._lines.feed(data):
            if isinstance(event, Line):
                self._line(event.data, out)
            elif isinstance(event, Started):
                name, value = _field(event.big.head)
                self._long = (name, len(event.big.head) - len(value))
                if name:  # a comment (empty field name) never counts towards an event
                    self._grow()
            elif isinstance(event, Ended):
                self._long_ended(event.big)
        return b"".join(out)

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if not line:
            out.append(self._dispatch())
        elif line.startswith(b":"):
            out.append(line + b"\n")
        elif self._big is not None:
            self._big.line(line)
        elif self._size + len(line) > self._limit:
            self._grow().line(line)
        else:
            self._kept.append(line)
            self._size += len(line)

    def _grow(self) -> _BigEvent:
        if self._big is None:
            self._big = _BigEvent()
            for line in self._kept:
                self._big.line(line)
            self._kept, self._size = [], 0
        return self._big

    def _long_ended(self, line: Oversized) -> None:
        assert self._long is not None
        (name, offset), self._long = self._long, None
        if not name:
            return
        assert self._big is not None
        self._big.size += line.size
        if name == b"data":
            value_size = line.size - offset
            self._big.data(line.head[offset:], line.tail[-value_size:] if value_size < _EDGE else line.tail)

    def _dispatch(self) -> bytes:
        big, kept = self._big, self._kept
        self._big, self._kept, self._size = None, [], 0
        if big is None:
            return b"\n".join(kept) + b"\n\n" if kept else b"\n"
        kind, found = Oversized.from_edges(big.head or b"", big.tail, big.size).identify(complete=True)
        target: RequestId | None = None
        if big.event not in (b"", b"message") or kind is Kind.SERVER_MESSAGE:
            pass  # not a message the session waits for
        elif self._request_id is not None:
            target = self._request_id  # the stream of one request: whatever else it was, it ends that request
        elif kind is Kind.RESPONSE:
            target = found
        logger.warning(
            "MCP server %s sent an event of %d bytes, over the limit of %d bytes: %s",
            self._name,
            big.size,
            self._limit,
            "dropped" if target is None else f"request {target!r} fails",
            extra={"mcp_server": self._name},
        )
        lines = []
        if target is not None:
            error = too_large(target, self._limit).message.model_dump_json(by_alias=True, exclude_unset=True)
            lines.append(b"data: " + error.encode())
        if big.id is not None:
            lines.append(b"id: " + big.id)
        return b"\n".join(lines) + b"\n\n" if lines else b""
