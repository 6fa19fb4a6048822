"""Tracing through the whole app: an in-memory OpenTelemetry exporter, the scripted worker, real HTTP."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from smg.observability.tracing import NULL_TRACING, Tracing, configure_tracing
from smg.settings import TraceSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from smg.testing.worker_faults import Faults
from tests.conftest import chat_body, make_settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TRACESTATE = "vendor=opaque"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


async def _spans(exporter: InMemorySpanExporter, kind: SpanKind, count: int) -> list[ReadableSpan]:
    """The finished spans of ``kind`` once there are ``count`` (the server span ends after the response)."""
    async with asyncio.timeout(5):
        while True:
            found = [s for s in exporter.get_finished_spans() if s.kind == kind]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.01)


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
    assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
    assert attempt.context.trace_id == server.context.trace_id
    assert attempt.attributes is not None
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
    assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
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
    assert second.context is not None
    pair = sorted(
        (a for a in attempts if a.parent is not None and a.parent.span_id == second.context.span_id),
        key=lambda a: a.start_time or 0,
    )
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


async def test_a_tool_loop_has_iteration_and_tool_call_spans(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
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
    body = chat_body(
        'CALL calc__evaluate {"expression": "6*7"}',
        tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
    )

    resp = await _post(gw, body, traceparent=CLIENT_PARENT)

    assert resp.status_code == 200, resp.text
    assert "42" in resp.json()["choices"][0]["message"]["content"]
    (server,) = [
        s for s in await _spans(exporter, SpanKind.SERVER, 2) if s.name == "POST /v1/chat/completions"
    ]
    assert server.context is not None
    spans = exporter.get_finished_spans()
    iterations = sorted(
        (s for s in spans if s.name.startswith("tool_loop iteration")), key=lambda s: s.start_time or 0
    )
    assert [s.name for s in iterations] == ["tool_loop iteration 1", "tool_loop iteration 2"]
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in iterations)
    (tool,) = [s for s in spans if s.name == "tools/call evaluate"]
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "evaluate"
    assert tool.attributes["mcp.method.name"] == "tools/call"
    assert tool.attributes["smg.mcp.server"] == "calc"
    assert iterations[0].context is not None
    assert tool.parent is not None and tool.parent.span_id == iterations[0].context.span_id
    attempts = [s for s in spans if s.kind == SpanKind.CLIENT and s.name.startswith("chat ")]
    assert {a.parent.span_id for a in attempts if a.parent is not None} == {
        s.context.span_id for s in iterations if s.context is not None
    }


def test_configure_tracing_builds_an_otlp_provider_only_when_enabled() -> None:
    assert configure_tracing(TraceSettings()) is None
    built = configure_tracing(TraceSettings(enabled=True, otlp_endpoint="127.0.0.1:1"))
    assert isinstance(built, TracerProvider)
    built.shutdown()  # nothing was recorded, so nothing is sent


def test_propagation_headers_carry_the_current_span_and_are_empty_when_off(provider: TracerProvider) -> None:
    tracing = Tracing(provider)
    assert tracing.propagation_headers() == {}  # no current span
    with tracing.tool_call("faults", "echo") as _span:
        current = trace.get_current_span().get_span_context()
        headers = tracing.propagation_headers()
    assert headers["traceparent"].startswith(f"00-{current.trace_id:032x}-{current.span_id:016x}-")
    assert NULL_TRACING.propagation_headers() == {}
