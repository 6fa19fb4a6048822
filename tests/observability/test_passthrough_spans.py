"""Completions and embeddings requests are traced as chat requests are: server span, route span, attempt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings
from tests.observability.conftest import finished_spans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("path", "body", "operation"),
    [
        ("/v1/completions", {"prompt": "hi there"}, "text_completion"),
        ("/v1/completions", {"prompt": "hi there", "stream": True}, "text_completion"),
        ("/v1/embeddings", {"input": "hi there"}, "embeddings"),
    ],
)
async def test_a_passed_through_request_is_a_route_span_over_its_attempt(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    path: str,
    body: dict[str, Any],
    operation: str,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
        resp = await http.post(
            path, json={"model": "mock-model", **body}, headers={"traceparent": CLIENT_PARENT}
        )
    assert resp.status_code == 200

    spans = await finished_spans(exporter, 3)
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    [attempt] = [s for s in spans if s.kind == SpanKind.CLIENT]
    [route] = [s for s in spans if s.name == "smg.route"]
    assert server.name == f"POST {path}"
    assert server.attributes is not None and server.attributes["http.route"] == path
    assert route.parent is not None and server.context is not None
    assert route.parent.span_id == server.context.span_id
    assert attempt.parent is not None and route.context is not None
    assert attempt.parent.span_id == route.context.span_id
    assert route.attributes is not None
    assert route.attributes["gen_ai.operation.name"] == operation
    assert attempt.name == f"{operation} mock-model"  # the worker call is of the same operation
    assert attempt.attributes is not None and attempt.attributes["gen_ai.operation.name"] == operation
    assert route.attributes["smg.streaming"] is bool(body.get("stream"))
    assert route.attributes["gen_ai.usage.input_tokens"] == 2
    async with httpx.AsyncClient(timeout=10) as http:
        [seen] = (await http.get(worker.url + "/_smg/requests")).json()
    assert attempt.context is not None
    assert seen["headers"]["traceparent"] == f"00-{TRACE_ID}-{attempt.context.span_id:016x}-01"
