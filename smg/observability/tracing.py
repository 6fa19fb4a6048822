"""OpenTelemetry tracing behind the span hooks of the edge, routing, the dispatcher and the tool loop
(DESIGN 5.2). The span tree of a request::

    POST /v1/chat/completions          server    (opentelemetry-instrumentation-fastapi; joins the
                                                  client's traceparent: `smg.observability.tracing_setup`)
      smg.route                        internal  (one per routed request)
        chat <model>                   client    (one per worker attempt, pass-through)
        tool_loop iteration N          internal  (one per model call of the tool loop)
          chat <model>                 client
          tools/call <tool>            client    (one per MCP call)

`Tracing` implements `smg.spans.Tracer`, the one tracing seam of the edge, routing and the dispatcher;
with ``--enable-trace`` off `make_tracing` gives that module's `NULL_TRACING` instead, which returns the
shared `NULL_SPAN`, builds no attributes and never calls OpenTelemetry. Every hook is guarded: a tracing
failure is logged and never fails a request. The server span is the instrumentation's; `server_span`
hands it to the edge, which adds what it knows.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from smg.spans import NULL_SPAN, NULL_TRACING, NullSpan, NullTracing

__all__ = ["NULL_TRACING", "NullTracing", "TracerProviderLike", "Tracing", "make_tracing"]

log = logging.getLogger("smg.observability")
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = ("traceparent", "tracestate")
TracerProviderLike = (
    trace.TracerProvider
)  # what `build_context` accepts, named so callers need no otel import


class _Span:
    recording = True  # `NULL_SPAN.recording` is False: callers may skip attribute work on that test

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, key: str, value: str | int | bool) -> None:
        try:
            self._span.set_attribute(key, value)
        except Exception:  # the telemetry guard
            log.exception("tracing: set_attribute failed")

    def rename(self, name: str) -> None:
        try:
            self._span.update_name(name)
        except Exception:  # the telemetry guard
            log.exception("tracing: update_name failed")

    def fail(self, error_type: str) -> None:
        try:
            self._span.set_attribute("error.type", error_type)
            self._span.set_status(Status(StatusCode.ERROR))
        except Exception:  # the telemetry guard
            log.exception("tracing: set_status failed")


class _Detached(_Span):
    """A span current only inside `activate` blocks (which must not yield), ended by `end` (idempotent)."""

    def __init__(self, span: trace.Span) -> None:
        super().__init__(span)
        self._ended = False

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        try:
            token = otel_context.attach(trace.set_span_in_context(self._span))
        except Exception:  # the telemetry guard
            log.exception("tracing: activating a span failed")
            yield
            return
        try:
            yield
        finally:
            otel_context.detach(token)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self._span.end()
        except Exception:  # the telemetry guard
            log.exception("tracing: ending a span failed")


class _Attempt:
    """One worker attempt: a client span, ended by `end` (for a stream, when the stream is closed)."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def inject(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """``headers`` with the W3C trace headers of this attempt's span instead of the client's."""
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in _TRACE_HEADERS}
            _PROPAGATOR.inject(out, context=trace.set_span_in_context(self._span))
            return out
        except Exception:  # the telemetry guard
            log.exception("tracing: inject failed")
            return headers

    def end(self, *, status: int | None, error: str | None) -> None:
        try:
            if status is not None:
                self._span.set_attribute("http.response.status_code", status)
            if error is not None:
                self._span.set_attribute("error.type", error)
                self._span.set_status(Status(StatusCode.ERROR))
            self._span.end()
        except Exception:  # the telemetry guard
            log.exception("tracing: ending an attempt span failed")


class Tracing:
    """Span hooks backed by ``provider`` (an SDK `TracerProvider`, or any OTel API provider)."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("smg")

    @contextlib.contextmanager
    def _current(self, name: str, kind: SpanKind, attributes: dict[str, Any], **kw: Any) -> Iterator[_Span]:
        try:
            cm = self._tracer.start_as_current_span(name, kind=kind, attributes=attributes, **kw)
            span = cm.__enter__()
        except Exception:  # the telemetry guard
            log.exception("tracing: starting span %s failed", name)
            yield _Span(trace.INVALID_SPAN)
            return
        try:
            yield _Span(span)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            with contextlib.suppress(Exception):
                cm.__exit__(None, None, None)

    def server_span(self) -> _Span | NullSpan:
        """The current request's server span (made around the whole app by the instrumentation that
        `smg.observability.tracing_setup.instrument_app` installs), or the no-op span when the request is
        not traced (an excluded URL, or not sampled)."""
        span = trace.get_current_span()
        return _Span(span) if span.is_recording() else NULL_SPAN

    def start_attempt(self, model: str, worker: str, *, attempt: int, operation: str = "chat") -> _Attempt:
        """A client span ``<operation> <model>`` for one worker attempt, a child of the current span (not
        made current)."""
        try:
            host = worker.split("://", 1)[-1].split("/", 1)[0]
            address, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": model,
                "server.address": address,
                "http.request.method": "POST",
                "smg.worker": worker,
            }
            if port:
                attributes["server.port"] = int(port)
            if attempt > 1:
                attributes["http.request.resend_count"] = attempt - 1
            attributes["smg.attempt"] = attempt
            span = self._tracer.start_span(
                f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes
            )
            return _Attempt(span)
        except Exception:  # the telemetry guard
            log.exception("tracing: starting an attempt span failed")
            return _Attempt(trace.INVALID_SPAN)

    def _detached(self, name: str, attributes: dict[str, Any]) -> _Detached:
        try:
            return _Detached(self._tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes))
        except Exception:  # the telemetry guard
            log.exception("tracing: starting span %s failed", name)
            return _Detached(trace.INVALID_SPAN)

    def start_route(self, model: str, *, streaming: bool, policy: str) -> _Detached:
        """The span of one routed request (tool resolution, then the tool loop or the pass-through
        attempts, to the last byte), a child of the current span."""
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "smg.streaming": streaming,
            "smg.worker.policy": policy,
        }
        return self._detached("smg.route", attributes)

    def start_iteration(self, model: str, iteration: int) -> _Detached:
        """One tool-loop iteration (its model call and its tool calls), a child of the current span."""
        attributes = {"gen_ai.request.model": model, "smg.loop.iteration": iteration}
        return self._detached(f"tool_loop iteration {iteration}", attributes)

    def tool_call(self, server: str, tool: str, *, call_id: str) -> contextlib.AbstractContextManager[_Span]:
        """One MCP ``tools/call``, current while it runs (the mcp SDK propagates it in ``params._meta``)."""
        attributes = {
            "gen_ai.tool.name": tool,
            "gen_ai.operation.name": "execute_tool",
            "mcp.method.name": "tools/call",
            "smg.mcp.server": server,
        }
        if call_id:
            attributes["gen_ai.tool.call.id"] = call_id
        return self._current(f"tools/call {tool}", SpanKind.CLIENT, attributes)

    def propagation_headers(self) -> Mapping[str, str]:
        """The W3C ``traceparent``/``tracestate`` headers of the current context (the MCP HTTP transports
        call it per request, in the context of the tool call); empty when there is no valid span."""
        try:
            out: dict[str, str] = {}
            _PROPAGATOR.inject(out)
            return out
        except Exception:  # the telemetry guard
            log.exception("tracing: inject failed")
            return {}


def make_tracing(provider: TracerProviderLike | None) -> Tracing | NullTracing:
    """`Tracing` on ``provider``, or the no-op `NULL_TRACING` when there is none."""
    return NULL_TRACING if provider is None else Tracing(provider)
