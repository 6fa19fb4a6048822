"""The recent tool loops: a bounded in-memory ring of what the last loops did, for the admin API.

Only a request that runs a tool loop (chat, streamed or not, and the Responses API) is recorded: its
service calls `RecentLoops.start` once the loop is planned, which puts a `LoopTrace` in the route's
`Generation`; the loop points the trace at its ledger's call records; `RouteRecorder.finish` calls
`LoopTrace.end`, which appends one entry. A pass-through request costs nothing here beyond the route
recorder's one ``is None`` test. The ring lives in one process and holds at most ``size`` entries (the
oldest go first); size 0 records nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from smg.routing.budgets import CallRecord
from smg.spans import Tracer

if TYPE_CHECKING:
    from smg.routing.metering import Generation

CHAT, RESPONSES = "chat.completions", "responses"
_NO_CALLS: Sequence[CallRecord] = ()


class LoopTrace:
    """One running loop's entry. ``calls`` is the loop's list of call records (the ledger's, read when
    the route ends)."""

    __slots__ = ("_ring", "caller", "calls", "endpoint", "request_id", "started", "trace_id")

    def __init__(
        self,
        ring: RecentLoops,
        *,
        endpoint: str,
        request_id: str | None,
        caller: str | None,
        trace_id: str | None,
    ) -> None:
        self._ring = ring
        self.endpoint = endpoint
        self.request_id = request_id
        self.caller = caller
        self.trace_id = trace_id
        self.started = time.time()
        self.calls: Sequence[CallRecord] = _NO_CALLS

    def end(self, model: str, done: Generation) -> None:
        """The route ended with ``done``: append this loop's entry to the ring (once)."""
        self._ring.add(
            {
                "object": "tool_loop",
                "request_id": self.request_id,
                "endpoint": self.endpoint,
                "model": model,
                "started_at": self.started,
                "ended_at": time.time(),
                "iterations": done.iterations,
                "stop_reason": done.stop_reason,
                "error_code": done.error,
                "caller": self.caller,
                "trace_id": self.trace_id,
                "calls": [_call_json(c) for c in self.calls],
            }
        )


def _call_json(call: CallRecord) -> dict[str, Any]:
    return {
        "server": call.server,
        "tool": call.tool,
        "status": call.status,
        "duration_ms": call.duration_ms,
        "iteration": call.iteration,
        "retried": call.attempts > 1,
    }


class RecentLoops:
    """The ring of the last ``size`` finished loops (0: off)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def start(
        self,
        done: Generation,
        *,
        endpoint: str,
        headers: dict[str, str],
        caller: str | None,
        tracer: Tracer,
        traced: bool,
    ) -> None:
        """A loop starts for the route whose generation is ``done`` (called inside the route's span,
        so that with tracing on (``traced``) the W3C trace id is the route's). ``headers``: the worker
        headers, whose ``X-Request-Id`` is the request's id; ``caller``: the scoped key's name."""
        if not self.size:
            return
        trace_id = None
        if traced:
            parent = tracer.propagation_headers().get("traceparent", "")
            trace_id = parent.split("-")[1] if parent.count("-") == 3 else None
        done.loop = LoopTrace(
            self,
            endpoint=endpoint,
            request_id=headers.get("X-Request-Id"),
            caller=caller,
            trace_id=trace_id,
        )

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` entries, newest first."""
        out: list[dict[str, Any]] = []
        for entry in reversed(self._entries):
            if len(out) >= limit:
                break
            out.append(entry)
        return out
