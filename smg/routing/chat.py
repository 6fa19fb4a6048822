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

import time
from collections.abc import AsyncGenerator, Callable, Collection, Mapping
from typing import Protocol

from smg.keys.scope import UNRESTRICTED, KeyScope
from smg.protocol import ChatRequest
from smg.routing.loop import ToolLoop
from smg.routing.metering import StreamMeter, stream_body
from smg.routing.passthrough import relay
from smg.routing.recent_loops import CHAT
from smg.routing.recorder import RouteRecorder, RouterObserver, RouteStream
from smg.routing.tools import ToolPlan, resolve_tools
from smg.spans import Tracer
from smg.workers.dispatch import Completed, Dispatcher


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

    async def _plan(self, request: ChatRequest, route: RouteRecorder, scope: KeyScope) -> ToolPlan | None:
        """The request's MCP tools within the caller's key ``scope``, or None for the pass-through path.
        Raises InvalidRequest, McpServerForbidden, McpServerUnavailable."""
        plan = None
        if self._tools is not None and self._catalog is not None:
            plan = await resolve_tools(
                request.body,
                self._tools.runtime,
                always=self._catalog.always(),
                aliases=self._catalog.aliases(),
                scope=scope,
            )
        route.span.set("smg.tool_loop", plan is not None)
        if plan is not None and self._tools is not None:
            self._tools.keep_recent(
                route.generation, route.span, endpoint=CHAT, headers=request.headers, caller=scope.name
            )
        return plan

    async def complete(self, request: ChatRequest, *, scope: KeyScope = UNRESTRICTED) -> Completed:
        """Non-streaming completion; ``scope``: the caller's key scope (its MCP tools). Raises
        InvalidRequest, McpServerForbidden, McpServerUnavailable, NoAvailableWorkers, ModelNotFound,
        UpstreamError."""
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=False,
            policy=self._policy,
            clock=self._clock,
        )
        with route:
            plan = await self._plan(request, route, scope)
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

    async def stream(self, request: ChatRequest, *, scope: KeyScope = UNRESTRICTED) -> RouteStream:
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
            plan = await self._plan(request, route, scope)
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
        return RouteStream(relay(upstream, route, StreamMeter(strip_usage=injected)), route, upstream.release)


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
