"""The tracing seam: what the edge, routing and the dispatcher ask of tracing, and the null objects of
tracing off. `smg.observability.tracing` implements `Tracer` on OpenTelemetry; nothing else imports a
telemetry library. The span tree of one chat request::

    POST /v1/chat/completions      ServerSpan   `Tracer.server_span` (made by the HTTP instrumentation)
      smg.route                    TraceSpan    `Tracer.start_route`, one per routed request
        chat <model>               AttemptSpan  `Tracer.start_attempt`, one per worker attempt
                                              (text_completion / embeddings <model> for those)
        tool_loop iteration N      TraceSpan    `Tracer.start_iteration`, one per model call of the loop
          chat <model>             AttemptSpan
          tools/call <tool>        Span         `Tracer.tool_call`, one per MCP call

A `TraceSpan` is never current by itself: `activate` makes it current for a block that does not
``yield``, because a streamed response is an async generator whose steps may run in another context than
the one that started it; spans started inside such a block become its children. Every hook is guarded by
its implementation: tracing never fails a request. With tracing off every hook returns the one shared
`NULL_SPAN`, whose ``recording`` is False: callers test it before computing attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from smg.errors import SmgError


class Span(Protocol):
    """A span someone else ends (a tool call's, current while its block runs)."""

    @property
    def recording(self) -> bool: ...
    def set(self, key: str, value: str | int | bool) -> None: ...
    def fail(self, error_type: str) -> None:
        """Mark the span failed with ``error_type`` (the gateway's error code or a tool status)."""
        ...


class ServerSpan(Span, Protocol):
    """The inbound request's span; the edge names it after the route template."""

    def rename(self, name: str) -> None: ...


class TraceSpan(Span, Protocol):
    """A span that is not current by itself (so it can outlive an ``await`` that yields a stream's bytes)."""

    def activate(self) -> AbstractContextManager[object]:
        """Current for a block that does not ``yield``; spans started inside are its children."""
        ...

    def end(self) -> None:
        """End the span (idempotent)."""
        ...


class AttemptSpan(Protocol):
    """One worker attempt, ended by the dispatcher (for a stream, when the stream is closed)."""

    def inject(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """``headers`` carrying this attempt's W3C trace context (unchanged when tracing is off)."""
        ...

    def end(self, *, status: int | None, error: str | None) -> None: ...


class Tracer(Protocol):
    """Every span hook of the gateway. Never raises."""

    def server_span(self) -> ServerSpan:
        """The current request's server span; `NULL_SPAN` when the request is not traced."""
        ...

    def start_route(self, model: str, *, streaming: bool, policy: str) -> TraceSpan:
        """The span of one routed request, a child of the current span (not made current)."""
        ...

    def start_attempt(self, model: str, worker: str, *, attempt: int, operation: str = "chat") -> AttemptSpan:
        """A span for one worker attempt (``attempt`` is 1-based), a child of the current span, named
        ``<operation> <model>`` (``chat``, ``text_completion`` or ``embeddings``)."""
        ...

    def start_iteration(self, model: str, iteration: int) -> TraceSpan:
        """One tool-loop iteration (1-based), a child of the current span: its model call (activate the
        span around opening it, so the worker attempt is a child) and its tool calls."""
        ...

    def tool_call(self, server: str, tool: str, *, call_id: str) -> AbstractContextManager[Span]:
        """One MCP ``tools/call``, current while its block runs."""
        ...

    def propagation_headers(self) -> Mapping[str, str]:
        """The W3C trace headers of the current context; empty when there is no valid span."""
        ...


class NullSpan:
    """The span of tracing off: every kind of span at once, doing nothing."""

    recording = False

    def set(self, key: str, value: str | int | bool) -> None:
        pass

    def fail(self, error_type: str) -> None:
        pass

    def rename(self, name: str) -> None:
        pass

    def activate(self) -> AbstractContextManager[None]:
        return _NULL_BLOCK

    def inject(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        return headers

    def end(self, *, status: int | None = None, error: str | None = None) -> None:
        pass


NULL_SPAN = NullSpan()
_NULL_BLOCK: AbstractContextManager[None] = nullcontext()
_NULL_SPAN_BLOCK: AbstractContextManager[NullSpan] = nullcontext(NULL_SPAN)


class NullTracing:
    """The `Tracer` of tracing off: hands out `NULL_SPAN`, builds no attributes."""

    def server_span(self) -> NullSpan:
        return NULL_SPAN

    def start_route(self, model: str, *, streaming: bool, policy: str) -> NullSpan:
        return NULL_SPAN

    def start_attempt(self, model: str, worker: str, *, attempt: int, operation: str = "chat") -> NullSpan:
        return NULL_SPAN

    def start_iteration(self, model: str, iteration: int) -> NullSpan:
        return NULL_SPAN

    def tool_call(self, server: str, tool: str, *, call_id: str) -> AbstractContextManager[NullSpan]:
        return _NULL_SPAN_BLOCK

    def propagation_headers(self) -> Mapping[str, str]:
        return {}


NULL_TRACING = NullTracing()


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
