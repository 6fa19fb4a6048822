"""The server span of every traced request is opentelemetry-instrumentation-fastapi's, wrapped around the
edge: standard HTTP attributes, the client's trace, no span for health and metrics URLs, route templates
only, the gateway's error code on a 5xx. With tracing off nothing is installed. In-memory exporter,
scripted worker, real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from smg.api.middleware import EdgeMiddleware
from smg.app import create_app
from smg.context import build_context
from smg.settings import RetrySettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker
from tests.conftest import chat_body, make_settings
from tests.observability.conftest import finished_spans

INSTRUMENTATION = "opentelemetry.instrumentation.fastapi"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


async def _servers(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    found = await finished_spans(exporter, count, SpanKind.SERVER)
    return sorted(found, key=lambda s: s.start_time or 0)


def _layers(app: Any) -> list[Any]:
    """The ASGI layers a request passes through, outermost first, down to the edge."""
    layer = app.build_middleware_stack()
    out = [layer]
    while not isinstance(layer, EdgeMiddleware) and hasattr(layer, "app"):
        layer = layer.app
        out.append(layer)
    return out


async def test_the_chat_shortcut_gets_the_instrumentations_server_span_with_standard_attributes(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)
    port = int(gw.url.rsplit(":", 1)[1])

    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        resp = await http.post(
            "/v1/chat/completions",
            json=chat_body(),
            headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "user-agent": "span-test/1"},
        )

    assert resp.status_code == 200
    (server,) = await _servers(exporter, 1)
    assert server.instrumentation_scope is not None
    assert server.instrumentation_scope.name == INSTRUMENTATION
    assert server.context is not None and format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == CLIENT_SPAN
    assert server.name == "POST /v1/chat/completions"
    attributes = dict(server.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/v1/chat/completions"
    assert attributes["url.scheme"] == "http"
    assert attributes["server.port"] == port
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["network.protocol.version"] == "1.1"
    assert attributes["user_agent.original"] == "span-test/1"
    assert attributes["http.response.status_code"] == 200
    assert "http.target" not in attributes and "http.url" not in attributes  # the old conventions
    assert server.status.status_code == StatusCode.UNSET
    route = [s for s in exporter.get_finished_spans() if s.name == "smg.route"]
    assert len(route) == 1 and route[0].parent is not None
    assert route[0].parent.span_id == server.context.span_id


async def test_health_and_metrics_urls_get_no_span_while_every_other_route_gets_one(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)

    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        for path in ("/health", "/liveness", "/readiness", "/metrics"):
            await http.get(path)
        assert (await http.get("/v1/models")).status_code == 200
        await http.get("/health/extra")  # not an excluded URL: only the exact paths are

    spans = await _servers(exporter, 2)
    assert [s.name for s in spans] == ["GET /v1/models", "GET unmatched"]
    assert all(s.instrumentation_scope and s.instrumentation_scope.name == INSTRUMENTATION for s in spans)


async def test_a_path_with_an_id_is_recorded_as_its_route_template_only(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        (listed,) = (await http.get("/workers")).json()["workers"]
        worker_id = listed["id"]
        assert (await http.get(f"/workers/{worker_id}")).status_code == 200

    spans = await _servers(exporter, 2)
    (one,) = [s for s in spans if s.name != "GET /workers"]
    assert one.name == "GET /workers/{key:path}"
    attributes = dict(one.attributes or {})
    assert attributes["http.route"] == "/workers/{key:path}"
    assert attributes["url.path"] == "/workers/{key:path}"
    assert not any(worker_id in str(value) for value in attributes.values())


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_a_5xx_server_span_carries_the_gateways_error_code(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    stream: bool,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(status=503))
    settings = make_settings((worker.url,), retry=RetrySettings(max_retries=1))
    gw: RunningGateway = await start_gateway(settings, tracer_provider=provider)

    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        resp = await http.post("/v1/chat/completions", json=chat_body(stream=stream))

    assert resp.status_code == 503
    (server,) = await _servers(exporter, 1)
    attributes = dict(server.attributes or {})
    assert attributes["error.type"] == "upstream_503"  # the edge's code, not the bare status
    assert attributes["http.response.status_code"] == 503
    assert server.status.status_code == StatusCode.ERROR


async def test_the_instrumentation_wraps_the_edge_when_tracing_is_on_and_is_absent_when_off(
    provider: TracerProvider,
) -> None:
    settings = make_settings()
    async with build_context(settings, tracer_provider=provider) as traced:
        on = create_app(settings, context=traced)
        layers = _layers(on)
        kinds = [type(layer) for layer in layers]
        assert OpenTelemetryMiddleware in kinds
        assert kinds.index(OpenTelemetryMiddleware) < kinds.index(EdgeMiddleware)
    async with build_context(settings) as untraced:
        off = create_app(settings, context=untraced)
        assert not getattr(off, "_is_instrumented_by_opentelemetry", False)
        assert not any(isinstance(layer, OpenTelemetryMiddleware) for layer in _layers(off))
        assert isinstance(_layers(off)[-1], EdgeMiddleware)
