"""A routed chat request is recorded exactly once, whatever ends it: one ``on_routed`` (and so one sample
in the router metrics) with its error code, one end of its route span, its worker released; a stage's
duration runs from that stage's own start. The pass-through path and both tool loops, against the real
scripted worker; unexpected errors come from a dispatcher or MCP runtime that breaks on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from smg.mcp.types import ToolInfo, ToolStatus
from smg.observability.metrics import Metrics
from smg.observability.observers import RouterMetrics
from smg.protocol import ChatRequest
from smg.routing.chat import ChatService
from smg.routing.loop import ToolLoop
from smg.routing.metering import Tokens
from smg.spans import NullTracing
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream
from tests._helpers import eventually
from tests.routing.conftest import FakeRuntime, Harness, ManualClock, request

PASS_THROUGH: list[dict[str, Any]] = []
TOOL_LOOP = [{"type": "mcp", "server_label": "clock"}]
PATHS = pytest.mark.parametrize("tools", [PASS_THROUGH, TOOL_LOOP], ids=["pass_through", "tool_loop"])
ONE_CALL = "CALL clock__now {}"


class Boom(RuntimeError):
    """An error no layer expects (a bug), as opposed to an `SmgError`."""


@dataclass
class RecordingObserver:
    """A RouterObserver that keeps every call and forwards it to the real `RouterMetrics`."""

    metrics: Metrics
    routed: list[tuple[bool, str | None]] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    stages: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.metrics.model_label.served_by(lambda model: model == "mock-model")
        self._real = RouterMetrics(self.metrics)

    def on_routed(self, model: str, *, streaming: bool, duration: float, error_code: str | None) -> None:
        self.routed.append((streaming, error_code))
        self.durations.append(duration)
        self._real.on_routed(model, streaming=streaming, duration=duration, error_code=error_code)

    def on_generation(
        self, model: str, *, ttft: float | None, tpot: float | None, tokens: Tokens | None
    ) -> None:
        self._real.on_generation(model, ttft=ttft, tpot=tpot, tokens=tokens)

    def on_stage(self, stage: str, duration: float) -> None:
        self.stages.append((stage, duration))
        self._real.on_stage(stage, duration)

    def errors(self, error_type: str, *, streaming: bool) -> float | None:
        labels = {
            "router_type": "http",
            "model": "mock-model",
            "endpoint": "chat",
            "streaming": "true" if streaming else "false",
            "error_type": error_type,
        }
        return self.metrics.registry.get_sample_value("smg_router_request_errors_total", labels)


@dataclass
class RouteSpan:
    """The route span: what happened to it, in order."""

    events: list[str] = field(default_factory=list)
    recording = True

    def set(self, key: str, value: str | int | bool) -> None:
        pass

    def fail(self, error_type: str) -> None:
        self.events.append(f"fail {error_type}")

    def activate(self) -> Any:
        return _NOTHING

    def end(self) -> None:
        self.events.append("end")


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NOTHING = _Nothing()


class RouteTracer(NullTracing):
    """Tracing off, except that every route span is a `RouteSpan`."""

    def __init__(self) -> None:
        self.routes: list[RouteSpan] = []

    def start_route(self, model: str, *, streaming: bool, policy: str) -> RouteSpan:
        self.routes.append(RouteSpan())
        return self.routes[-1]


class _BreakingChunks:
    """An upstream stream whose chunks fail with `Boom` after the first one."""

    def __init__(self, real: UpstreamStream) -> None:
        self._real = real
        self.worker = real.worker

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._real.chunks():
            yield chunk
            raise Boom("the relay broke")

    async def aclose(self, **outcome: Any) -> None:
        await self._real.aclose(**outcome)

    async def release(self) -> None:
        await self._real.release()


@dataclass
class BreakingDispatcher:
    """The real dispatcher, except where ``breaks``: ``complete`` or ``open`` raise `Boom`, ``chunk`` gives
    streams that raise it after their first chunk."""

    real: Dispatcher
    breaks: str = ""

    @property
    def policy_name(self) -> str:
        return self.real.policy_name

    async def complete(self, model: str, body: bytes, **kw: Any) -> Completed:
        if self.breaks == "complete":
            raise Boom("complete broke")
        return await self.real.complete(model, body, **kw)

    async def open_stream(self, model: str, body: bytes, **kw: Any) -> Any:
        if self.breaks == "open":
            raise Boom("open broke")
        upstream = await self.real.open_stream(model, body, **kw)
        return _BreakingChunks(upstream) if self.breaks == "chunk" else upstream


class Catalog:
    def always(self) -> tuple[str, ...]:
        return ()

    def aliases(self) -> Mapping[str, Mapping[str, str]]:
        return {}


@dataclass
class SlowPlanning(FakeRuntime):
    """Listing tools (the route's planning, before any stage) takes 100 s of ``clock``; each tool call 1 s."""

    clock: ManualClock = field(default_factory=ManualClock)

    def __post_init__(self) -> None:
        self.advance = self._tick

    def _tick(self) -> None:
        self.clock.now += 1

    async def list_tools(
        self, servers: list[str] | None = None, *, refresh: bool = False
    ) -> dict[str, list[ToolInfo]]:
        self.clock.now += 100
        return await super().list_tools(servers, refresh=refresh)


@dataclass
class Route:
    service: ChatService
    observer: RecordingObserver
    tracer: RouteTracer
    harness: Harness

    @property
    def span(self) -> RouteSpan:
        (span,) = self.tracer.routes
        return span

    async def read(self, req: ChatRequest) -> bytes:
        chunks = await self.service.stream(req)
        try:
            return b"".join([chunk async for chunk in chunks])
        finally:
            await chunks.aclose()  # as the edge does, whatever happened

    def in_flight(self) -> list[int]:
        return [w.in_flight for w in self.harness.registry]


def _route(harness: Harness, *, breaks: str = "", runtime: FakeRuntime | None = None, **kw: Any) -> Route:
    dispatcher: Any = BreakingDispatcher(harness.dispatcher, breaks)
    observer = RecordingObserver(Metrics(CollectorRegistry()))
    tracer = RouteTracer()
    loop = ToolLoop(dispatcher, runtime or harness.runtime, tracer=tracer)
    service = ChatService(dispatcher, observer=observer, tracer=tracer, tools=loop, catalog=Catalog(), **kw)
    return Route(service, observer, tracer, harness)


@PATHS
async def test_an_unexpected_error_opening_a_stream_is_recorded_once_as_internal_error(
    harness: Harness, tools: list[dict[str, Any]]
) -> None:
    route = _route(harness, breaks="open")

    with pytest.raises(Boom):
        await route.service.stream(request(ONE_CALL, tools=tools, stream=True))

    assert route.observer.routed == [(True, "internal_error")]
    assert route.observer.errors("internal_error", streaming=True) == 1
    assert route.span.events == ["fail internal_error", "end"]
    assert route.in_flight() == [0]


@PATHS
async def test_an_unexpected_error_after_the_first_byte_is_recorded_once_as_internal_error(
    harness: Harness, tools: list[dict[str, Any]]
) -> None:
    async def broken(_: dict[str, Any]) -> tuple[ToolStatus, str]:
        raise Boom("the tool runtime broke")

    harness.runtime.handlers["clock"]["now"] = broken  # the loop's first round ends in this call
    route = _route(harness, breaks="" if tools else "chunk")

    with pytest.raises(Boom):
        await route.read(request(ONE_CALL, tools=tools, stream=True))

    assert route.observer.routed == [(True, "internal_error")]
    assert route.observer.errors("internal_error", streaming=True) == 1
    assert route.observer.errors("client_disconnected", streaming=True) is None
    assert route.span.events == ["fail internal_error", "end"]
    assert route.in_flight() == [0]


@PATHS
async def test_an_unexpected_error_of_a_completion_is_recorded_once_as_internal_error(
    harness: Harness, tools: list[dict[str, Any]]
) -> None:
    route = _route(harness, breaks="complete")

    with pytest.raises(Boom):
        await route.service.complete(request(ONE_CALL, tools=tools))

    assert route.observer.routed == [(False, "internal_error")]
    assert route.observer.errors("internal_error", streaming=False) == 1
    assert route.span.events == ["fail internal_error", "end"]


@PATHS
async def test_a_stream_closed_before_its_first_byte_releases_its_worker_and_is_recorded_once(
    harness: Harness, tools: list[dict[str, Any]]
) -> None:
    route = _route(harness)
    chunks = await route.service.stream(request(ONE_CALL, tools=tools, stream=True))
    assert route.in_flight() == [1]

    await chunks.aclose()  # the client left before the response head went out: nothing was read

    assert route.in_flight() == [0]
    assert route.observer.routed == [(True, "client_disconnected")]
    assert route.span.events == ["fail client_disconnected", "end"]


@PATHS
async def test_a_cancelled_completion_is_recorded_once_as_client_disconnected(
    harness: Harness, tools: list[dict[str, Any]]
) -> None:
    harness.worker.faults.update({"hang": True})
    route = _route(harness)
    task = asyncio.create_task(route.service.complete(request(ONE_CALL, tools=tools)))
    await eventually(lambda: route.in_flight() == [1])

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert route.observer.routed == [(False, "client_disconnected")]
    assert route.span.events == ["fail client_disconnected", "end"]
    assert route.in_flight() == [0]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_the_tool_loop_stage_is_timed_from_its_own_start_not_from_the_routes(
    harness: Harness, stream: bool
) -> None:
    runtime = SlowPlanning()
    route = _route(harness, runtime=runtime, clock=runtime.clock)
    req = request(ONE_CALL, tools=TOOL_LOOP, stream=stream)

    if stream:
        assert (await route.read(req)).endswith(b"data: [DONE]\n\n")
    else:
        assert (await route.service.complete(req)).status == 200

    [(stage, took)] = route.observer.stages
    [routed] = route.observer.durations
    assert stage == "tool_loop"
    # Planning (listing the tools: 100 s) came before the stage; the stage holds the one tool call (1 s).
    assert 0 < took <= routed - 100
    assert route.observer.routed == [(stream, None)]
