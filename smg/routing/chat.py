"""ChatService: /v1/chat/completions, either pass-through or the MCP tool loop.

A request without MCP tools takes the pass-through path: the body goes to the worker exactly as received
(except that a stream whose client did not ask for usage asks for it, and that usage chunk is not
relayed: `smg.routing.metering`, ADR 0007) and a stream is relayed chunk by chunk; if it breaks after the
first byte, the client gets an OpenAI error event and ``data: [DONE]`` instead of a silent cut. A request
with MCP tools (its ``mcp`` entries, or servers exposed ``always``) goes to the `ToolLoop`. On both paths
TTFT, TPOT, tokens and stage durations go to the `RouterObserver`, and the route span (`RouteTracer`)
covers the request from tool resolution to the last byte, parent of the loop's iteration spans and of
the worker attempt spans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Protocol

from smg.errors import SmgError, UpstreamError, UpstreamProtocolError
from smg.protocol import SSE_DONE, ChatRequest, sse_error_event
from smg.routing.loop import ToolLoop
from smg.routing.metering import Generation, StreamMeter, Tokens, read_completion, stream_body
from smg.routing.spans import NULL_SPAN, TraceSpan
from smg.routing.tools import ToolPlan
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")


class RouterObserver(Protocol):
    def on_routed(self, model: str, *, streaming: bool, duration: float, error_code: str | None) -> None:
        """One routed request finished (for a stream: its last byte was relayed or it failed)."""
        ...

    def on_generation(
        self, model: str, *, ttft: float | None, tpot: float | None, tokens: Tokens | None
    ) -> None:
        """What one answered request generated: time to first token and per later token (streams),
        (input, output) tokens from the worker's ``usage``; None where unknown."""
        ...

    def on_stage(self, stage: str, duration: float) -> None:
        """One pipeline stage took ``duration`` seconds (``upstream``, ``tool_loop``)."""
        ...


class RouteTracer(Protocol):
    """Tracing hook of routing (`smg.observability.tracing`); a shared no-op span when tracing is off."""

    def start_route(self, model: str, *, streaming: bool, policy: str) -> TraceSpan:
        """The span of one routed request, a child of the current (server) span; not made current."""
        ...


class _NoRouteTracer:
    def start_route(self, model: str, *, streaming: bool, policy: str) -> TraceSpan:
        return NULL_SPAN


def _annotate(route: TraceSpan, done: Generation) -> None:
    """What is known of the answer, on the route span (GenAI semantic-convention names where they exist)."""
    if done.worker:
        route.set("smg.worker", done.worker)
    if done.response_id:
        route.set("gen_ai.response.id", done.response_id)
    if done.response_model:
        route.set("gen_ai.response.model", done.response_model)
    if done.tokens is not None:
        route.set("gen_ai.usage.input_tokens", done.tokens[0])
        route.set("gen_ai.usage.output_tokens", done.tokens[1])
    if done.iterations:
        route.set("smg.loop.iterations", done.iterations)
    if done.stop_reason:
        route.set("smg.loop.stop_reason", done.stop_reason)


class ToolCatalog(Protocol):
    """Which servers every request gets, and tool aliases (`smg.mcp.control.McpControl` provides it)."""

    def always(self) -> Collection[str]: ...
    def aliases(self) -> Mapping[str, Mapping[str, str]]: ...


class ChatService:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        observer: RouterObserver,
        tools: ToolLoop | None = None,
        catalog: ToolCatalog | None = None,
        tracer: RouteTracer | None = None,
    ) -> None:
        self._tracer: RouteTracer = tracer or _NoRouteTracer()
        self._dispatcher = dispatcher
        self._observer = observer
        self._tools = tools
        self._catalog = catalog

    async def _plan(self, request: ChatRequest) -> ToolPlan | None:
        if self._tools is None or self._catalog is None:
            return None
        return await self._tools.plan(request, always=self._catalog.always(), aliases=self._catalog.aliases())

    def _report(self, route: TraceSpan, model: str, done: Generation, started: float) -> None:
        if done.first_token is not None or done.tokens is not None:
            ttft = None if done.first_token is None else done.first_token - started
            self._observer.on_generation(model, ttft=ttft, tpot=done.tpot, tokens=done.tokens)
        if route.recording:  # tracing off: no attribute work
            _annotate(route, done)
        if done.error is not None:
            route.fail(done.error)
        route.end()

    async def complete(self, request: ChatRequest) -> Completed:
        """Non-streaming completion. Raises InvalidRequest, McpServerUnavailable, NoAvailableWorkers,
        ModelNotFound, UpstreamError."""
        started = time.perf_counter()
        error: str | None = None
        route = self._tracer.start_route(request.model, streaming=False, policy=self._dispatcher.policy_name)
        report = Generation()
        try:
            with route.activate():
                plan = await self._plan(request)
                route.set("smg.tool_loop", plan is not None)
                stage_started = time.perf_counter()
                if plan is not None:
                    assert self._tools is not None
                    done = await self._tools.complete(request, plan, report=report)
                    stage = "tool_loop"
                else:
                    done = await self._dispatcher.complete(
                        request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
                    )
                    stage = "upstream"
            self._observer.on_stage(stage, time.perf_counter() - stage_started)
            report.worker = done.worker
            if done.status == 200:
                read_completion(done.body, report)
            return done
        except SmgError as exc:
            error = report.error = exc.code
            raise
        finally:
            self._report(route, request.model, report, started)
            self._observer.on_routed(
                request.model, streaming=False, duration=time.perf_counter() - started, error_code=error
            )

    async def stream(self, request: ChatRequest) -> AsyncIterator[bytes]:
        """Open the upstream stream (errors before the first byte raise) and return the byte stream."""
        started = time.perf_counter()
        route = self._tracer.start_route(request.model, streaming=True, policy=self._dispatcher.policy_name)
        try:
            with route.activate():
                plan = await self._plan(request)
                route.set("smg.tool_loop", plan is not None)
                if plan is not None:
                    assert self._tools is not None
                    report = Generation()
                    chunks = await self._tools.stream(request, plan, report=report, route=route)
                    return self._timed(chunks, request.model, started, route, report)
                body, injected = stream_body(request)
                stage_started = time.perf_counter()
                upstream = await self._dispatcher.open_stream(
                    request.model, body, headers=request.headers, affinity_key=request.affinity_key
                )
            self._observer.on_stage("upstream", time.perf_counter() - stage_started)
        except SmgError as exc:
            self._observer.on_routed(
                request.model, streaming=True, duration=time.perf_counter() - started, error_code=exc.code
            )
            self._report(route, request.model, Generation(error=exc.code), started)
            raise
        except BaseException:
            route.end()
            raise
        meter = StreamMeter(strip_usage=injected)
        return self._relay(upstream, request.model, started, meter, route)

    async def _timed(
        self,
        chunks: AsyncIterator[bytes],
        model: str,
        started: float,
        route: TraceSpan,
        report: Generation,
    ) -> AsyncIterator[bytes]:
        completed = False
        try:
            async for chunk in chunks:
                yield chunk
            completed = True
        finally:
            error = report.error or (None if completed else "client_disconnected")
            self._observer.on_stage("tool_loop", time.perf_counter() - started)
            report.error = error
            self._report(route, model, report, started)
            self._observer.on_routed(
                model, streaming=True, duration=time.perf_counter() - started, error_code=error
            )
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _relay(
        self, upstream: UpstreamStream, model: str, started: float, meter: StreamMeter, route: TraceSpan
    ) -> AsyncIterator[bytes]:
        failure: UpstreamError | None = None
        completed = False
        tail = b""
        try:
            async for chunk in upstream.chunks():
                # Not (tail + chunk)[-64:]: that copies every chunk, a large one too.
                tail = chunk[-64:] if len(chunk) >= 64 else (tail + chunk)[-64:]
                out = meter.feed(chunk, time.perf_counter())
                del chunk  # while the client is slow to take ``out``, hold only ``out``
                if out:
                    yield out
            rest = meter.flush()
            if rest:
                yield rest
            if b"[DONE]" not in tail:
                raise UpstreamProtocolError(
                    f"worker {upstream.worker.url} ended the stream without [DONE]",
                    worker=upstream.worker.url,
                )
            completed = True
        except UpstreamError as exc:
            failure = exc
            log.warning("stream from %s broke after the first byte: %s", upstream.worker.url, exc.message)
            separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
            yield meter.flush() + separator + sse_error_event(exc) + SSE_DONE
            completed = True
        finally:
            error = failure.code if failure else (None if completed else "client_disconnected")
            report = Generation(
                first_token=meter.first_token,
                tpot=meter.tpot(),
                tokens=meter.tokens,
                response_id=meter.response_id,
                response_model=meter.response_model,
                worker=upstream.worker.url,
                error=error,
            )
            self._report(route, model, report, started)
            self._observer.on_routed(
                model, streaming=True, duration=time.perf_counter() - started, error_code=error
            )
            await upstream.aclose(failure=failure, completed=completed)
