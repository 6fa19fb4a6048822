"""Runtime-mutable fault injection and counters for the scripted worker.

`Faults` is a plain mutable dataclass shared by reference with the running worker: changing a field
(directly in-process, or through `POST /_smg/faults`) affects the next chat request. `Faults.update`
validates a whole change set before applying any of it, so a bad control-plane call changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Faults", "WorkerStats"]


@dataclass(slots=True)
class Faults:
    """Faults applied to model requests: chat, completions and embeddings (and `health_status` to
    `GET /health`).

    Attributes:
        status: when set, every chat request answers this HTTP status with an OpenAI-shaped error
            (code `injected_fault`).
        fail_every: when > 0, the Nth, 2Nth, ... chat request (counted from the last time this field or
            the faults as a whole were changed through `update`/`reset`) answers `fail_status`.
        fail_status: the status used by `fail_every`.
        delay_ms: sleep before answering a chat request (applies to injected errors too).
        chunk_delay_ms: sleep between stream chunks.
        hang: a chat request never answers (until the client disconnects or the worker stops).
        drop_after_chunks: when streaming, close the TCP connection after this many SSE data events
            (the role chunk counts as the first), without a terminating chunk or `[DONE]`.
        hold_after_chunks: when streaming, pause after this many SSE data events until the fault is
            cleared through `POST /_smg/faults` (or the worker stops): a gate tests open by order.
        health_status: status answered by `GET /health`.
    """

    status: int | None = None
    fail_every: int = 0
    fail_status: int = 503
    delay_ms: int = 0
    chunk_delay_ms: int = 0
    hang: bool = False
    drop_after_chunks: int | None = None
    hold_after_chunks: int | None = None
    health_status: int = 200
    # Bumped whenever `fail_every` must restart its count; internal, so not part of `to_dict`.
    epoch: int = field(default=0, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the public fields as a JSON-ready dict."""
        return {name: getattr(self, name) for name in _FIELD_TYPES}

    def reset(self) -> None:
        """Restore every fault to its default."""
        defaults = Faults()
        for name in _FIELD_TYPES:
            setattr(self, name, getattr(defaults, name))
        self.epoch += 1

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply `changes` (field name -> value); `{"reset": true}` first resets everything.

        Raises:
            ValueError: an unknown field or a value of the wrong type; nothing is changed then.
        """
        reset = changes.get("reset", False)
        if not isinstance(reset, bool):
            raise ValueError("'reset' must be a boolean")
        values = {name: value for name, value in changes.items() if name != "reset"}
        for name, value in values.items():
            _check_value(name, value)
        if reset:
            self.reset()
        for name, value in values.items():
            setattr(self, name, value)
        if "fail_every" in values:
            self.epoch += 1


def _check_value(name: str, value: Any) -> None:
    expected = _FIELD_TYPES.get(name)
    if expected is None:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(_FIELD_TYPES)}")
    kind, nullable = expected
    if value is None:
        if not nullable:
            raise ValueError(f"fault {name!r} cannot be null")
        return
    # bool is an int subclass; an int field must not silently accept true/false.
    if type(value) is not kind:
        raise ValueError(f"fault {name!r} must be {kind.__name__}{' or null' if nullable else ''}")
    if isinstance(value, int) and not isinstance(value, bool):
        if name in _STATUS_FIELDS and not 100 <= value <= 599:
            raise ValueError(f"fault {name!r} must be an HTTP status (100-599)")
        if value < 0:
            raise ValueError(f"fault {name!r} must be >= 0")


_STATUS_FIELDS = frozenset({"status", "fail_status", "health_status"})


_FIELD_TYPES: dict[str, tuple[type, bool]] = {
    "status": (int, True),
    "fail_every": (int, False),
    "fail_status": (int, False),
    "delay_ms": (int, False),
    "chunk_delay_ms": (int, False),
    "hang": (bool, False),
    "drop_after_chunks": (int, True),
    "hold_after_chunks": (int, True),
    "health_status": (int, False),
}
assert set(_FIELD_TYPES) == {f.name for f in dataclasses.fields(Faults)} - {"epoch"}


@dataclass(slots=True)
class WorkerStats:
    """Counters of the requests a worker received (since start), and of what its streams wrote.

    Attributes:
        stream_bytes_sent: stream body bytes whose write has returned, summed over all streams (a
            write returns once the socket's buffer has room, so bytes the peer does not read stay out).
        stream_writes_blocked: stream writes now waiting for the peer to read (flow control).
    """

    chat_requests: int = 0
    completions_requests: int = 0
    embeddings_requests: int = 0
    health_checks: int = 0
    stream_bytes_sent: int = 0
    stream_writes_blocked: int = 0

    def to_dict(self) -> dict[str, int]:
        """Return the counters as a JSON-ready dict."""
        return {
            "chat_requests": self.chat_requests,
            "completions_requests": self.completions_requests,
            "embeddings_requests": self.embeddings_requests,
            "health_checks": self.health_checks,
            "stream_bytes_sent": self.stream_bytes_sent,
            "stream_writes_blocked": self.stream_writes_blocked,
        }
