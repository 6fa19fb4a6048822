"""The tracing seams of routing: span Protocols and their no-op implementations (DESIGN 5.2).

`smg.observability.tracing` implements them on OpenTelemetry; routing code only sees these Protocols. A
`TraceSpan` is never current by itself: `activate` makes it current for a block that does not ``yield``,
because a streamed response is an async generator whose steps may run in another context than the one
that started it; spans started inside such a block (worker attempts, tool calls, the next iteration)
become its children.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

from smg.errors import SmgError
from smg.routing.metering import usage_tokens


class ToolSpan(Protocol):
    def set(self, key: str, value: str | int | bool) -> None: ...
    def fail(self, error_type: str) -> None: ...


class TraceSpan(Protocol):
    """A span that is not current by itself (so it can outlive an ``await`` that yields a stream's bytes):
    `activate` makes it current for a block that does not ``yield``, so spans started inside are its
    children; `end` ends it (idempotent). A shared no-op when tracing is off, whose ``recording`` is False:
    callers test it before computing attributes."""

    @property
    def recording(self) -> bool: ...
    def set(self, key: str, value: str | int | bool) -> None: ...
    def fail(self, error_type: str) -> None: ...
    def activate(self) -> AbstractContextManager[object]: ...
    def end(self) -> None: ...


class LoopTracer(Protocol):
    """Tracing hooks of the tool loop (`smg.observability.tracing`); no-ops when tracing is off."""

    def start_iteration(self, model: str, iteration: int) -> TraceSpan:
        """One iteration, a child of the current span: its model call (activate the span around opening
        it, so the worker attempt is a child) and its tool calls (``iteration`` is 1-based)."""
        ...

    def tool_call(self, server: str, tool: str, *, call_id: str) -> AbstractContextManager[ToolSpan]:
        """One MCP ``tools/call``, current while its block runs."""
        ...


class _NullSpan:
    recording = False
    _block: AbstractContextManager[None] = nullcontext()

    def set(self, key: str, value: str | int | bool) -> None:
        pass

    def fail(self, error_type: str) -> None:
        pass

    def activate(self) -> AbstractContextManager[None]:
        return self._block

    def end(self) -> None:
        pass


NULL_SPAN = _NullSpan()
"""The no-op `TraceSpan` (and `ToolSpan`)."""
_NULL_TOOL_BLOCK: AbstractContextManager[ToolSpan] = nullcontext(NULL_SPAN)


class NullLoopTracer:
    """A LoopTracer that records nothing."""

    def start_iteration(self, model: str, iteration: int) -> TraceSpan:
        return NULL_SPAN

    def tool_call(self, server: str, tool: str, *, call_id: str) -> AbstractContextManager[ToolSpan]:
        return _NULL_TOOL_BLOCK


@contextmanager
def current(span: TraceSpan) -> Iterator[TraceSpan]:
    """``span`` current for a block that does not ``yield``, failed by an SmgError leaving it, then ended."""
    try:
        with span.activate():
            yield span
    except SmgError as exc:
        span.fail(exc.code)
        raise
    finally:
        span.end()


def annotate_round(span: TraceSpan, *, usage: Any, response_model: Any) -> None:
    """The usage and response model of one model call on its iteration span (nothing when not recording)."""
    if not span.recording:
        return
    tokens = usage_tokens(usage)
    if tokens is not None:
        span.set("gen_ai.usage.input_tokens", tokens[0])
        span.set("gen_ai.usage.output_tokens", tokens[1])
    if isinstance(response_model, str) and response_model:
        span.set("gen_ai.response.model", response_model)
