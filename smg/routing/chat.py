"""ChatService: /v1/chat/completions, either pass-through or the MCP tool loop.

A request reads top to bottom: a `RouteRecorder` is made (the route span starts), the request's MCP
tools are resolved (`smg.routing.tools.resolve_tools`), then the pass-through path or the `ToolLoop`
runs, and the recorder records the outcome once, however the route ends.

A request without MCP tools takes the pass-through path: the body goes to the worker exactly as received
(except that a stream whose client did not ask for usage asks for it, and that usage chunk is not
relayed: `smg.routing.metering`, ADR 0007) and a stream is relayed chunk by chunk; if it breaks after the
first byte, the client gets an OpenAI error event and ``data: [DONE]`` instead of a silent cut. A request
with MCP tools (its ``mcp`` entries, or servers exposed ``always``) goes to the `ToolLoop`. The route span
covers the request from tool resolution to the last byte, parent of the loop's iteration spans and of
the worker attempt spans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Collection, Mapping
from typing import Protocol

from smg.errors import UpstreamError, UpstreamProtocolError
from smg.protocol import SSE_DONE, ChatRequest, sse_error_event
from smg.routing.loop import ToolLoop
from smg.routing.metering import StreamMeter, stream_body
from smg.routing.recorder import RouteRecorder, RouterObserver, RouteStream
from smg.routing.tools import ToolPlan, resolve_tools
from smg.spans import Tracer
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")


class ToolCatalog(Protocol):
    """Which servers every request gets, and tool aliases (`smg.mcp.control.McpControl` provides it)."""

    def always(self) -> Collection[str]: ...
    def aliases(self) -> Mapping[str, Mapping[str, str]]: ...


class ChatService:
    """Routes chat requests. ``tools`` and ``catalog`` together enable MCP tools (without them every
    request is passed through); ``clock`` is the one route durations, stage durations and TTFT are read
    from."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        observer: RouterObserver,
        tracer: Tracer,
        tools: ToolLoop | None = None,
        catalog: ToolCatalog | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._dispatcher = dispatcher
        self._policy = dispatcher.policy_name
        self._observer = observer
        self._tracer = tracer
        self._tools = tools
        self._catalog = catalog
        self._clock = clock

    async def _plan(self, request: ChatRequest, route: RouteRecorder) -> ToolPlan | None:
        """The request's MCP tools, or None for the pass-through path. Raises InvalidRequest,
        McpServerUnavailable."""
        plan = None
        if self._tools is not None and self._catalog is not None:
            plan = await resolve_tools(
                request.body,
                self._tools.runtime,
                always=self._catalog.always(),
                aliases=self._catalog.aliases(),
            )
        route.span.set("smg.tool_loop", plan is not None)
        return plan

    async def complete(self, request: ChatRequest) -> Completed:
        """Non-streaming completion. Raises InvalidRequest, McpServerUnavailable, NoAvailableWorkers,
        ModelNotFound, UpstreamError."""
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=False,
            policy=self._policy,
            clock=self._clock,
        )
        with route:
            plan = await self._plan(request, route)
            if plan is None:
                route.stage("upstream")
                done = await self._dispatcher.complete(
                    request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
                )
            else:
                assert self._tools is not None
                route.stage("tool_loop")
                done = await self._tools.complete(request, plan, report=route.generation)
            route.end_stage()
            route.answered(done)
        route.finish()
        return done

    async def stream(self, request: ChatRequest) -> RouteStream:
        """Open the upstream stream (errors before the first byte raise) and return the client's bytes."""
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=True,
            policy=self._policy,
            clock=self._clock,
        )
        with route:
            plan = await self._plan(request, route)
            if plan is not None:
                assert self._tools is not None
                route.stage("tool_loop")  # until the client stream ends
                run = await self._tools.open_stream(
                    request, plan, report=route.generation, route=route.span, clock=route.clock
                )
                return RouteStream(_loop_relay(run.events(), route), route, run.release)
            body, injected = stream_body(request)
            route.stage("upstream")  # until the worker's head
            upstream = await self._dispatcher.open_stream(
                request.model, body, headers=request.headers, affinity_key=request.affinity_key
            )
            route.end_stage()
        relay = _relay(upstream, route, StreamMeter(strip_usage=injected))
        return RouteStream(relay, route, upstream.release)


async def _loop_relay(
    chunks: AsyncGenerator[bytes, None], route: RouteRecorder
) -> AsyncGenerator[bytes, None]:
    """The tool loop's client stream; the route ends with it (the loop reports its own errors after the
    first byte in ``route.generation``)."""
    try:
        async for chunk in chunks:
            yield chunk
    except BaseException as exc:
        route.failed(exc)
        raise
    finally:
        try:
            await chunks.aclose()
        finally:
            route.finish()


async def _relay(
    upstream: UpstreamStream, route: RouteRecorder, meter: StreamMeter
) -> AsyncGenerator[bytes, None]:
    """The worker's stream as the client gets it; a break after the first byte becomes an error event
    and ``data: [DONE]``."""
    failure: UpstreamError | None = None
    completed = False
    tail = b""
    clock = route.clock
    try:
        async for chunk in upstream.chunks():
            # Not (tail + chunk)[-64:]: that copies every chunk, a large one too.
            tail = chunk[-64:] if len(chunk) >= 64 else (tail + chunk)[-64:]
            out = meter.feed(chunk, clock())
            del chunk  # while the client is slow to take ``out``, hold only ``out``
            if out:
                yield out
        rest = meter.flush()
        if rest:
            yield rest
        if b"[DONE]" not in tail:
            raise UpstreamProtocolError(
                f"worker {upstream.worker.url} ended the stream without [DONE]", worker=upstream.worker.url
            )
        completed = True
    except UpstreamError as exc:
        failure = exc
        route.failed(exc)
        log.warning("stream from %s broke after the first byte: %s", upstream.worker.url, exc.message)
        separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
        yield meter.flush() + separator + sse_error_event(exc) + SSE_DONE
        completed = True
    except BaseException as exc:
        route.failed(exc)
        raise
    finally:
        meter.report(route.generation, worker=upstream.worker.url)
        route.finish()
        await upstream.aclose(failure=failure, completed=completed)
