"""Tracing through the whole app: an in-memory OpenTelemetry exporter, the scripted worker, real HTTP."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from smg.observability.tracing import NULL_TRACING, Tracing
from smg.observability.tracing_setup import configure_tracing
from smg.settings import RetrySettings, TraceSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from smg.testing.worker_faults import Faults
from tests.conftest import chat_body, make_settings
from tests.observability.conftest import finished_spans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TRACESTATE = "vendor=opaque"


async def _spans(exporter: InMemorySpanExporter, kind: SpanKind, count: int) -> list[ReadableSpan]:
    return await finished_spans(exporter, count, kind)


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    return sorted(found, key=lambda s: s.start_time or 0)


def _is_child(span: ReadableSpan, parent: ReadableSpan) -> bool:
    assert parent.context is not None
    return span.parent is not None and span.parent.span_id == parent.context.span_id


async def _worker_headers(worker: RunningWorker) -> list[dict[str, str]]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(worker.url + "/_smg/requests")
    data: Any = resp.json()
    entries = data["requests"] if isinstance(data, dict) else data
    return [entry["headers"] for entry in entries]


async def _post(gw: RunningGateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        return await http.post("/v1/chat/completions", json=body, headers=headers)


async def test_a_request_joins_the_client_trace_and_the_worker_gets_the_attempt_span(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)

    resp = await _post(gw, chat_body(), traceparent=CLIENT_PARENT, tracestate=TRACESTATE)

    assert resp.status_code == 200
    (server,) = await _spans(exporter, SpanKind.SERVER, 1)
    (attempt,) = await _spans(exporter, SpanKind.CLIENT, 1)
    assert server.context is not None and attempt.context is not None
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert server.name == "POST /v1/chat/completions"
    assert server.attributes is not None
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["url.path"] == "/v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200
    (route,) = _named(exporter, "smg.route")
    assert _is_child(route, server) and _is_child(attempt, route)
    assert route.attributes is not None
    assert dict(route.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "mock-model",
        "gen_ai.response.model": "mock-model",
        "gen_ai.response.id": resp.json()["id"],
        "gen_ai.usage.input_tokens": resp.json()["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": resp.json()["usage"]["completion_tokens"],
        "smg.streaming": False,
        "smg.tool_loop": False,
        "smg.worker.policy": "round_robin",
        "smg.worker": worker.url,
    }
    assert route.status.is_ok
    assert attempt.context.trace_id == server.context.trace_id
    assert attempt.attributes is not None
    assert attempt.attributes["gen_ai.operation.name"] == "chat"
    assert attempt.attributes["gen_ai.request.model"] == "mock-model"
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert attempt.attributes["smg.attempt"] == 1
    (headers,) = await _worker_headers(worker)
    assert headers["traceparent"] == f"00-{TRACE_ID}-{attempt.context.span_id:016x}-01"
    assert headers["tracestate"] == TRACESTATE


async def test_a_streamed_request_is_traced_too(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)

    resp = await _post(gw, chat_body(stream=True), traceparent=CLIENT_PARENT)

    assert resp.status_code == 200 and "[DONE]" in resp.text
    (server,) = await _spans(exporter, SpanKind.SERVER, 1)
    (attempt,) = await _spans(exporter, SpanKind.CLIENT, 1)
    assert server.context is not None and attempt.context is not None
    (route,) = _named(exporter, "smg.route")
    assert _is_child(route, server) and _is_child(attempt, route)
    assert route.attributes is not None
    assert route.attributes["smg.streaming"] is True and route.attributes["smg.tool_loop"] is False
    assert route.attributes["gen_ai.response.model"] == "mock-model"
    assert str(route.attributes["gen_ai.response.id"]).startswith("chatcmpl-")
    output = route.attributes["gen_ai.usage.output_tokens"]  # from the usage the gateway asked for
    assert isinstance(output, int) and output > 0
    assert attempt.attributes is not None and attempt.attributes["http.response.status_code"] == 200
    (headers,) = await _worker_headers(worker)
    assert headers["traceparent"] == f"00-{TRACE_ID}-{attempt.context.span_id:016x}-01"


async def test_each_retry_is_its_own_attempt_span(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(fail_every=2))  # the 2nd request fails
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)

    for _ in range(2):
        assert (await _post(gw, chat_body())).status_code == 200

    attempts = await _spans(exporter, SpanKind.CLIENT, 3)
    servers = await _spans(exporter, SpanKind.SERVER, 2)
    assert len(attempts) == 3
    second = max(servers, key=lambda s: s.start_time or 0)
    (route,) = (r for r in _named(exporter, "smg.route") if _is_child(r, second))
    pair = sorted((a for a in attempts if _is_child(a, route)), key=lambda a: a.start_time or 0)
    assert [a.attributes["smg.attempt"] for a in pair if a.attributes is not None] == [1, 2]
    assert pair[0].attributes is not None and pair[0].attributes["http.response.status_code"] == 503
    assert not pair[0].status.is_ok
    assert pair[1].attributes is not None and pair[1].attributes["http.response.status_code"] == 200
    assert len({a.context.span_id for a in pair if a.context is not None}) == 2


async def test_tracing_off_records_nothing_and_forwards_the_client_headers(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    exporter: InMemorySpanExporter,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), trace=TraceSettings()))

    resp = await _post(gw, chat_body(), traceparent=CLIENT_PARENT, tracestate=TRACESTATE)

    assert resp.status_code == 200
    (headers,) = await _worker_headers(worker)
    assert headers["traceparent"] == CLIENT_PARENT
    assert headers["tracestate"] == TRACESTATE
    assert exporter.get_finished_spans() == ()
    assert type(gw.context.tracing).__name__ == "NullTracing"


def _usage_of(resp: httpx.Response, *, streamed: bool) -> dict[str, Any]:
    if not streamed:
        usage: dict[str, Any] = resp.json()["usage"]
        return usage
    events = [e[6:] for e in resp.text.split("\n\n") if e.startswith("data: {")]
    (usage,) = (doc["usage"] for doc in map(orjson.loads, events) if doc.get("usage"))
    return usage


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_tool_loop_is_a_route_span_over_iteration_spans_over_attempts_and_tool_calls(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    streamed: bool,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)
    calc = {
        "name": "calc",
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.calc", "--transport", "stdio"],
    }
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as admin:
        assert (await admin.post("/mcp/servers", json=calc)).status_code == 201
    extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}} if streamed else {}
    body = chat_body(
        'CALL calc__evaluate {"expression": "6*7"}',
        tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
        **extra,
    )

    resp = await _post(gw, body, traceparent=CLIENT_PARENT)

    assert resp.status_code == 200, resp.text
    assert "42" in resp.text
    (server,) = [
        s for s in await _spans(exporter, SpanKind.SERVER, 2) if s.name == "POST /v1/chat/completions"
    ]
    (route,) = _named(exporter, "smg.route")
    assert _is_child(route, server)
    iterations = [s for s in exporter.get_finished_spans() if s.name.startswith("tool_loop iteration")]
    iterations.sort(key=lambda s: s.start_time or 0)
    assert [s.name for s in iterations] == ["tool_loop iteration 1", "tool_loop iteration 2"]
    assert all(_is_child(s, route) for s in iterations)
    (tool,) = _named(exporter, "tools/call evaluate")
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "evaluate"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert str(tool.attributes["gen_ai.tool.call.id"]).startswith("call_")
    assert tool.attributes["mcp.method.name"] == "tools/call"
    assert tool.attributes["smg.mcp.server"] == "calc"
    assert tool.attributes["smg.tool.status"] == "ok"
    assert _is_child(tool, iterations[0])
    attempts = sorted(_named(exporter, "chat mock-model"), key=lambda s: s.start_time or 0)
    assert len(attempts) == 2
    assert all(_is_child(a, it) for a, it in zip(attempts, iterations, strict=True))

    usage = _usage_of(resp, streamed=streamed)
    assert route.attributes is not None
    assert route.attributes["smg.streaming"] is streamed
    assert route.attributes["smg.tool_loop"] is True
    assert route.attributes["smg.loop.iterations"] == 2
    assert route.attributes["smg.loop.stop_reason"] == "completed"
    assert route.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert route.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert route.attributes["gen_ai.response.model"] == "mock-model"
    per_round = [(s.attributes or {}).get("gen_ai.usage.output_tokens") for s in iterations]
    assert all(isinstance(n, int) for n in per_round)
    assert sum(n for n in per_round if isinstance(n, int)) == usage["completion_tokens"]
    assert all(s.status.is_ok for s in [route, *iterations, tool])


async def test_a_stream_loop_failing_after_the_first_byte_fails_its_route_and_iteration_spans(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(fail_every=2))  # the 2nd model call fails
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), retry=RetrySettings(max_retries=1)), tracer_provider=provider
    )
    calc = {
        "name": "calc",
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.calc", "--transport", "stdio"],
    }
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as admin:
        assert (await admin.post("/mcp/servers", json=calc)).status_code == 201
    body = chat_body(
        'CALL calc__evaluate {"expression": "6*7"}',
        tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
        stream=True,
    )

    resp = await _post(gw, body)

    assert resp.status_code == 200 and '"error"' in resp.text and resp.text.endswith("data: [DONE]\n\n")
    await _spans(exporter, SpanKind.SERVER, 2)
    (route,) = _named(exporter, "smg.route")
    (second,) = _named(exporter, "tool_loop iteration 2")
    assert _is_child(second, route)
    for span in (route, second):
        assert not span.status.is_ok and span.attributes is not None
        assert span.attributes["error.type"] == "upstream_error"
    assert _named(exporter, "tool_loop iteration 1")[0].status.is_ok


def test_configure_tracing_builds_an_otlp_provider_only_when_enabled() -> None:
    assert configure_tracing(TraceSettings()) is None
    built = configure_tracing(TraceSettings(enabled=True, otlp_endpoint="127.0.0.1:1"))
    assert isinstance(built, TracerProvider)
    built.shutdown()  # nothing was recorded, so nothing is sent


def test_propagation_headers_carry_the_current_span_and_are_empty_when_off(provider: TracerProvider) -> None:
    tracing = Tracing(provider)
    assert tracing.propagation_headers() == {}  # no current span
    with tracing.tool_call("faults", "echo", call_id="call_1") as _span:
        current = trace.get_current_span().get_span_context()
        headers = tracing.propagation_headers()
    assert headers["traceparent"].startswith(f"00-{current.trace_id:032x}-{current.span_id:016x}-")
    assert NULL_TRACING.propagation_headers() == {}


def test_tracing_off_hands_out_shared_no_op_spans_that_never_become_current() -> None:
    route = NULL_TRACING.start_route("mock-model", streaming=True, policy="round_robin")
    iteration = NULL_TRACING.start_iteration("mock-model", 1)
    assert route is iteration and not route.recording
    with route.activate(), NULL_TRACING.tool_call("calc", "evaluate", call_id="call_1") as tool:
        tool.set("smg.tool.status", "ok")
        assert trace.get_current_span() is trace.INVALID_SPAN
    route.end()
    assert NULL_TRACING.start_attempt("mock-model", "http://w", attempt=1).inject({"a": "b"}) == {"a": "b"}


def test_a_route_span_is_current_only_inside_activate_and_ends_once(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracing = Tracing(provider)
    route = tracing.start_route("mock-model", streaming=False, policy="random")
    assert trace.get_current_span() is trace.INVALID_SPAN
    with route.activate():
        iteration = tracing.start_iteration("mock-model", 1)
    assert trace.get_current_span() is trace.INVALID_SPAN
    iteration.end()
    route.end()
    route.end()
    (it,) = _named(exporter, "tool_loop iteration 1")
    (rt,) = _named(exporter, "smg.route")
    assert _is_child(it, rt)
    assert rt.attributes is not None and rt.attributes["smg.worker.policy"] == "random"
