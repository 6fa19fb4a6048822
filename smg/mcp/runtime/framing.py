"""Bounded framing of MCP messages: the per-message byte limit, lines read in bounded memory, and what a
message over the limit was (from its first and last bytes only).

A message over the limit is never held whole: its bytes stream past while only its first and last
`_EDGE` bytes and its size are kept. From those, `Oversized.identify` finds the top-level JSON-RPC members
that are plain values and sit before the first large member or after the last one; every SDK writes
``jsonrpc``, ``id`` and ``method`` there (Python: ``{"jsonrpc":"2.0","id":7,"result":...}``; TypeScript:
``{"result":...,"jsonrpc":"2.0","id":7}``). The transports turn an oversized response into a JSON-RPC
error for its request (`too_large`), so only that request fails and the session goes on.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from mcp.shared.message import SessionMessage
from mcp.types import ErrorData, JSONRPCError, RequestId

__all__ = [
    "DEFAULT_MESSAGE_LIMIT",
    "MESSAGE_TOO_LARGE",
    "Ended",
    "Kind",
    "Line",
    "LineSplitter",
    "MessageTooLarge",
    "Oversized",
    "Started",
    "message_limit",
    "too_large",
]

MESSAGE_TOO_LARGE = -32090  # JSON-RPC's implementation-defined range; -32000 is the SDK's "connection closed"
_MARGIN = 1024 * 1024
_NO_LIMIT_CAP = 64 * 1024 * 1024
_EDGE = 4096


def message_limit(max_output_bytes: int) -> int:
    """Bytes of one MCP message the gateway reads for a tool output limit of ``max_output_bytes``
    (0: no limit): twice the limit, since a result may carry its text both as content and as structured
    content, plus 1 MiB for JSON escaping and the other fields; 64 MiB when the output is not limited."""
    return 2 * max_output_bytes + _MARGIN if max_output_bytes > 0 else _NO_LIMIT_CAP


DEFAULT_MESSAGE_LIMIT = message_limit(262_144)  # of `--mcp-max-tool-output-bytes`' default


def too_large(request_id: RequestId, limit: int) -> SessionMessage:
    """The error response that replaces the response to ``request_id`` when it is over ``limit`` bytes."""
    text = (
        f"the MCP server's response was larger than {limit} bytes, the gateway's limit for one MCP message "
        "(set by --mcp-max-tool-output-bytes), and was discarded; ask the tool for less output"
    )
    error = ErrorData(code=MESSAGE_TOO_LARGE, message=text)
    return SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


class MessageTooLarge(ValueError):
    """A message over the limit that was dropped without failing any request: nothing in its first and
    last bytes showed which request, if any, it answered."""


class Kind(enum.Enum):
    """What an oversized message was, as far as its first and last bytes tell."""

    RESPONSE = "response"  # a result or an error, with the id of the request it answers
    SERVER_MESSAGE = "server message"  # a request or notification from the server (it has a method)
    UNKNOWN = "unknown"


_KEY = re.compile(rb'\s*"([^"\\]{1,64})"\s*:\s*')
_SCALAR = rb'-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"[^"\\]{0,256}"|true|false|null'
_HEAD_VALUE = re.compile(rb"(" + _SCALAR + rb")\s*([,}])")
_TAIL_MEMBER = re.compile(rb'[,{]\s*"([^"\\]{1,64})"\s*:\s*(' + _SCALAR + rb")\s*\Z")
_MAX_MEMBERS = 16


class Oversized:
    """A message over the limit: its first and last bytes and its size so far (`add` as it streams)."""

    def __init__(self, start: bytes) -> None:
        self.head = start[:_EDGE]
        self.tail = start[-_EDGE:]
        self.size = len(start)

    @classmethod
    def from_edges(cls, head: bytes, tail: bytes, size: int) -> Oversized:
        """A message known only by its first bytes, last bytes and size."""
        big = cls(head)
        big.tail, big.size = tail[-_EDGE:], size
        return big

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        self.tail = piece[-_EDGE:] if len(piece) >= _EDGE else (self.tail + piece)[-_EDGE:]

    def identify(self, *, complete: bool) -> tuple[Kind, RequestId | None]:
        """The kind of message and its id, from the first bytes and (when ``complete``) the last ones."""
        members, opened = _leading_members(self.head)
        if complete:
            members = _trailing_members(self.tail) | members
        request_id = _request_id(members.get("id"))
        if "method" in members:
            return Kind.SERVER_MESSAGE, request_id
        # Early, only a first large member named result or error says "response"; at the end, an id
        # without a method does (a request or notification from the server always has a method).
        if request_id is not None and (complete or opened in ("result", "error")):
            return Kind.RESPONSE, request_id
        return Kind.UNKNOWN, request_id


def _leading_members(head: bytes) -> tuple[dict[str, bytes], str | None]:
    """The top-level members with plain values at the start of a JSON object, and the key of the first
    member whose value is not one (or None)."""
    members: dict[str, bytes] = {}
    start = re.match(rb"\s*\{", head)
    if start is None:
        return members, None
    pos = start.end()
    for _ in range(_MAX_MEMBERS):
        key = _KEY.match(head, pos)
        if key is None:
            return members, None
        name = key.group(1).decode("utf-8", "replace")
        value = _HEAD_VALUE.match(head, key.end())
        if value is None:
            return members, name
        members.setdefault(name, value.group(1))
        if value.group(2) == b"}":
            break
        pos = value.end()
    return members, None


def _trailing_members(tail: bytes) -> dict[str, bytes]:
    """The top-level members with plain values at the end of a JSON object. Reading backwards from the
    closing brace is unambiguous: the last byte closes the top-level object and a plain value cannot
    hold a quote, so each match is a member of that object."""
    members: dict[str, bytes] = {}
    body = tail.rstrip()
    if not body.endswith(b"}"):
        return members
    body = body[:-1]
    for _ in range(_MAX_MEMBERS):
        member = _TAIL_MEMBER.search(body)
        if member is None:
            break
        members.setdefault(member.group(1).decode("utf-8", "replace"), member.group(2))
        body = body[: member.start() + 1].rstrip()
        if body.endswith(b"{"):
            break
        body = body[:-1]
    return members


def _request_id(raw: bytes | None) -> RequestId | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:  # a string of invalid UTF-8
        return None
    return (
        value if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)) else None
    )


@dataclass(frozen=True)
class Line:
    """A complete line within the limit (without its terminator)."""

    data: bytes


@dataclass(frozen=True)
class Started:
    """A line went over the limit; ``big`` keeps being updated until the `Ended` of the same line."""

    big: Oversized


@dataclass(frozen=True)
class Ended:
    big: Oversized


class _State(enum.Enum):
    KEEPING = "keeping"  # the current line is held, it is within the limit
    DISCARDING = "discarding"  # the current line went over the limit: only its edges are kept


class LineSplitter:
    """Splits a byte stream into lines of at most ``limit`` bytes; longer ones stream past as
    `Started` / `Ended` with only their edges kept. Terminators: LF, and with ``cr`` also CR and CRLF."""

    def __init__(self, limit: int, *, cr: bool = False) -> None:
        self._limit = limit
        self._terminator = re.compile(rb"[\r\n]" if cr else rb"\n")
        self._cr = cr
        self._after_cr = False
        self._parts: list[bytes] = []
        self._size = 0
        self._state = _State.KEEPING
        self._big: Oversized | None = None

    def feed(self, data: bytes) -> list[Line | Started | Ended]:
        """The lines (and oversized line events) that ``data`` completes or starts, in order."""
        events: list[Line | Started | Ended] = []
        if not data:
            return events
        pos = 0
        if self._after_cr and data.startswith(b"\n"):
            pos = 1  # the LF of a CRLF split across reads
        self._after_cr = False
        while True:
            end = self._terminator.search(data, pos)
            self._extend(data[pos : len(data) if end is None else end.start()], events)
            if end is None:
                return events
            events.append(self._finish())
            pos = end.end()
            if self._cr and data[end.start() : pos] == b"\r":
                if pos == len(data):
                    self._after_cr = True
                elif data[pos : pos + 1] == b"\n":
                    pos += 1

    def _extend(self, piece: bytes, events: list[Line | Started | Ended]) -> None:
        if not piece:
            return
        if self._state is _State.DISCARDING:
            assert self._big is not None
            self._big.add(piece)
            return
        if self._size + len(piece) <= self._limit:
            self._parts.append(piece)
            self._size += len(piece)
            return
        self._big = Oversized(b"".join([*self._parts, piece[:_EDGE]]))
        self._big.add(piece[_EDGE:])
        self._parts, self._size, self._state = [], 0, _State.DISCARDING
        events.append(Started(self._big))

    def _finish(self) -> Line | Ended:
        if self._state is _State.DISCARDING:
            assert self._big is not None
            big, self._big, self._state = self._big, None, _State.KEEPING
            return Ended(big)
        line = b"".join(self._parts)
        self._parts, self._size = [], 0
        return Line(line)
