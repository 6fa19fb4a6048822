"""The tool calls of a model reply, and reading an upstream OpenAI chunk stream to get them.

`calls_of_message` reads them from a whole assistant message. `SseDecoder` turns body bytes, split
anywhere, into the ``data`` payloads of complete events (comments and other fields are dropped).
`ToolCallAccumulator` rebuilds whole tool calls from ``delta.tool_calls`` fragments: fragments are matched
by ``index`` (the id and name come in the first fragment of a call, ``arguments`` is the concatenation of
all of them), calls may interleave and arrive between content deltas. `with_ids` names the calls an
upstream sent without an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_EVENT_BYTES = 8 * 1024 * 1024  # one chat chunk is a few hundred bytes; this is a broken stream


class SseEventTooLarge(ValueError):
    """An unfinished SSE event grew past the decoder's limit."""


class SseDecoder:
    """Incremental SSE decoder: `feed` bytes, get the data payloads of the events they completed.
    Holds at most ``max_event_bytes`` of an unfinished event; `feed` raises SseEventTooLarge past it."""

    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        if len(self._buffer) > self._max:
            self._buffer = b""
            raise SseEventTooLarge(f"an SSE event exceeded {self._max} bytes")
        payloads: list[str] = []
        for event in events:
            data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
            if data:
                payloads.append(b"\n".join(data).decode())
        return payloads

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered."""
        return bool(self._buffer.strip())


@dataclass(frozen=True)
class AccumulatedCall:
    """One tool call rebuilt from its fragments. ``id`` is empty when the upstream never sent one."""

    index: int
    id: str
    name: str
    arguments: str

    def as_message_call(self) -> dict[str, Any]:
        """The call as it appears in an assistant message's ``tool_calls``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


def calls_of_message(message: dict[str, Any]) -> list[AccumulatedCall]:
    """The tool calls of a non-stream assistant message (ill-shaped entries are skipped)."""
    calls: list[AccumulatedCall] = []
    raw = message.get("tool_calls")
    for i, call in enumerate(raw if isinstance(raw, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        calls.append(
            AccumulatedCall(
                index=i,
                id=str(call.get("id") or ""),
                name=str(function.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
            )
        )
    return calls


def with_ids(calls: Sequence[AccumulatedCall], *, iteration: int) -> list[AccumulatedCall]:
    """``calls`` with an id for any call the upstream sent without one (tool messages need it)."""
    return [
        c if c.id else AccumulatedCall(c.index, f"call_smg_{iteration}_{c.index}", c.name, c.arguments)
        for c in calls
    ]


@dataclass
class _Partial:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)  # the fragments, joined once (+= is quadratic)


class ToolCallAccumulator:
    """Collects ``delta.tool_calls`` fragments of one streamed reply."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}
        self._last: int | None = None

    def feed(self, deltas: Iterable[Any]) -> None:
        """Add the fragments of one chunk's ``delta.tool_calls`` (ill-shaped entries are skipped).

        A fragment without ``index`` continues the previous call, unless it carries a new ``id``.
        """
        for delta in deltas:
            if not isinstance(delta, dict):
                continue
            index = delta.get("index")
            if not isinstance(index, int):
                call_id = delta.get("id")
                known = self._calls.get(self._last) if self._last is not None else None
                if known is None or (call_id and known.id and call_id != known.id):
                    index = max(self._calls, default=-1) + 1
                else:
                    index = self._last
            assert index is not None
            self._last = index
            partial = self._calls.setdefault(index, _Partial())
            if isinstance(delta.get("id"), str) and not partial.id:
                partial.id = delta["id"]
            function = delta.get("function")
            if isinstance(function, dict):
                name = function.get("name")
                if isinstance(name, str) and name and not partial.name:
                    partial.name = name
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    partial.arguments.append(arguments)

    def calls(self) -> list[AccumulatedCall]:
        """The calls seen so far, by index."""
        return [
            AccumulatedCall(index=i, id=p.id, name=p.name, arguments="".join(p.arguments))
            for i, p in sorted(self._calls.items())
        ]

    def __bool__(self) -> bool:
        return bool(self._calls)
