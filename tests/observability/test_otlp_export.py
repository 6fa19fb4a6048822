"""`--enable-trace` end to end: the real provider, BatchSpanProcessor and OTLP/gRPC exporter send the spans
of tool-loop requests (non-streamed and streamed) to an in-test OTLP trace receiver; the worker and the MCP
server (through a recording HTTP proxy) get the W3C trace headers."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import httpx
import orjson
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from smg.app import create_app
from smg.observability.metrics import Metrics
from smg.settings import McpSettings, TraceSettings
from smg.testing.gateway import running_gateway, serving
from smg.testing.processes import running
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
CLIENT_PARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def Export(  # the gRPC method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, int]]:
    """A synchronous gRPC server on its own threads: the exporter flushes from the provider's shutdown,
    which runs on the event loop's thread, so an asyncio server could not answer it."""
    servicer = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(grace=None)


@pytest.fixture(scope="module")
def faults_url() -> Iterator[str]:
    args = [sys.executable, "-m", "mcp_servers.faults", "--transport", "streamable-http", "--port", "0"]
    with running(args, "MCP_SERVER_READY") as (_proc, url):
        yield url


@dataclass
class _Proxy:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@pytest.fixture
async def proxy(faults_url: str) -> AsyncIterator[_Proxy]:
    """A reverse proxy to the faults server that records each request's headers and body (streamable HTTP
    is plain POST/GET/DELETE with JSON or SSE responses, relayed chunk by chunk)."""
    upstream = faults_url.rsplit("/", 1)[0]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    recorded = _Proxy(url=f"http://127.0.0.1:{sock.getsockname()[1]}/mcp")

    async with aiohttp.ClientSession(auto_decompress=False) as session:

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            recorded.requests.append(({k.lower(): v for k, v in request.headers.items()}, body))
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            async with session.request(
                request.method, upstream + request.path_qs, headers=headers, data=body
            ) as upstream_resp:
                resp = web.StreamResponse(
                    status=upstream_resp.status,
                    headers={k: v for k, v in upstream_resp.headers.items() if k.lower() not in _HOP},
                )
                await resp.prepare(request)
                async for chunk in upstream_resp.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # open SSE streams
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            yield recorded
        finally:
            await runner.cleanup()
            sock.close()


async def test_a_tool_loop_is_exported_over_otlp_as_one_tree_in_the_clients_trace(
    worker: RunningWorker, receiver: tuple[_Receiver, int], proxy: _Proxy, metrics: Metrics
) -> None:
    servicer, port = receiver
    settings = make_settings(
        (worker.url,),
        mcp=McpSettings(max_iterations=4),
        trace=TraceSettings(enabled=True, otlp_endpoint=f"127.0.0.1:{port}"),
    )
    async with (
        running_gateway(settings, metrics=metrics) as gw,  # no tracer_provider: the real one
        httpx.AsyncClient(base_url=gw.url, timeout=60) as http,
    ):
        resp = await http.post(
            "/mcp/servers", json={"name": "faults", "transport": "streamable-http", "url": proxy.url}
        )
        assert resp.status_code == 201, resp.text
        resp = await http.post(
            "/v1/chat/completions",
            json={
                "model": "mock-model",
                "messages": [{"role": "user", "content": 'CALL faults__echo {"text": "hi"}'}],
                "tools": [{"type": "mcp", "server_label": "faults"}],
            },
            headers={"traceparent": CLIENT_PARENT},
        )
        assert resp.status_code == 200, resp.text
        assert "hi" in resp.json()["choices"][0]["message"]["content"]
        worker_requests = (await http.get(worker.url + "/_smg/requests")).json()
    # the context is closed: the provider was shut down, which flushed the batch to the receiver

    spans = [s for s in servicer.spans if s.trace_id.hex() == TRACE_ID]
    names = [s.name for s in spans]
    assert "POST /v1/chat/completions" in names
    assert names.count("chat mock-model") == 2  # the tool-call round and the final answer
    assert sum(n.startswith("tool_loop iteration") for n in names) == 2
    assert names.count("tools/call echo") == 1
    ids = {s.span_id.hex() for s in spans}
    assert len(ids) == len(spans)
    for span in spans:
        assert span.parent_span_id.hex() in ids | {CLIENT_SPAN}, span.name
    (server,) = (s for s in spans if s.name == "POST /v1/chat/completions")
    assert server.parent_span_id.hex() == CLIENT_SPAN
    assert server.kind == Span.SpanKind.SPAN_KIND_SERVER

    entries = worker_requests["requests"] if isinstance(worker_requests, dict) else worker_requests
    worker_parents = [e["headers"]["traceparent"] for e in entries]
    assert len(worker_parents) == 2 and all(p.split("-")[1] == TRACE_ID for p in worker_parents)
    attempts = {s.span_id.hex() for s in spans if s.name == "chat mock-model"}
    assert {p.split("-")[2] for p in worker_parents} == attempts

    (tool_span,) = (s for s in spans if s.name == "tools/call echo")
    calls = [headers for headers, body in proxy.requests if b'"tools/call"' in body]
    assert len(calls) == 1
    assert calls[0]["traceparent"].split("-")[1:3] == [TRACE_ID, tool_span.span_id.hex()]


def _attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


async def test_a_streamed_tool_loop_is_exported_as_server_route_iterations_attempts_and_tool_calls(
    worker: RunningWorker, receiver: tuple[_Receiver, int], proxy: _Proxy, metrics: Metrics
) -> None:
    servicer, port = receiver
    settings = make_settings(
        (worker.url,),
        mcp=McpSettings(max_iterations=4),
        trace=TraceSettings(enabled=True, otlp_endpoint=f"127.0.0.1:{port}"),
    )
    async with (
        running_gateway(settings, metrics=metrics) as gw,
        httpx.AsyncClient(base_url=gw.url, timeout=60) as http,
    ):
        resp = await http.post(
            "/mcp/servers", json={"name": "faults", "transport": "streamable-http", "url": proxy.url}
        )
        assert resp.status_code == 201, resp.text
        resp = await http.post(
            "/v1/chat/completions",
            json={
                "model": "mock-model",
                "messages": [{"role": "user", "content": 'CALL faults__echo {"text": "hi"}'}],
                "tools": [{"type": "mcp", "server_label": "faults"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            headers={"traceparent": CLIENT_PARENT},
        )
        assert resp.status_code == 200 and resp.text.endswith("data: [DONE]\n\n"), resp.text
    # the context is closed: the provider was shut down, which flushed the batch to the receiver

    events = [e[6:] for e in resp.text.split("\n\n") if e.startswith("data: {")]
    (usage,) = (doc["usage"] for doc in map(orjson.loads, events) if doc.get("usage"))
    spans = [s for s in servicer.spans if s.trace_id.hex() == TRACE_ID]
    by_id = {s.span_id.hex(): s for s in spans}
    assert len(by_id) == len(spans)

    def parent(span: Span) -> str:
        found = by_id.get(span.parent_span_id.hex())
        return found.name if found is not None else span.parent_span_id.hex()

    tree = sorted((s.name, parent(s)) for s in spans)
    assert tree == sorted(
        [
            ("POST /v1/chat/completions", CLIENT_SPAN),
            ("smg.route", "POST /v1/chat/completions"),
            ("tool_loop iteration 1", "smg.route"),
            ("tool_loop iteration 2", "smg.route"),
            ("chat mock-model", "tool_loop iteration 1"),
            ("chat mock-model", "tool_loop iteration 2"),
            ("tools/call echo", "tool_loop iteration 1"),
        ]
    )
    (route,) = (s for s in spans if s.name == "smg.route")
    attributes = _attributes(route)
    assert attributes["smg.streaming"] is True and attributes["smg.tool_loop"] is True
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "mock-model"
    assert attributes["gen_ai.response.model"] == "mock-model"
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attributes["smg.loop.iterations"] == 2 and attributes["smg.worker"] == worker.url
    rounds = [_attributes(s) for s in spans if s.name.startswith("tool_loop iteration")]
    assert sum(r["gen_ai.usage.output_tokens"] for r in rounds) == usage["completion_tokens"]
    (tool,) = (_attributes(s) for s in spans if s.name == "tools/call echo")
    assert tool["gen_ai.tool.name"] == "echo" and tool["mcp.method.name"] == "tools/call"


async def test_an_app_built_without_a_context_traces_with_the_provider_it_builds(
    worker: RunningWorker, receiver: tuple[_Receiver, int]
) -> None:
    servicer, port = receiver
    settings = make_settings(
        (worker.url,), trace=TraceSettings(enabled=True, otlp_endpoint=f"127.0.0.1:{port}")
    )
    async with (
        serving(create_app(settings)) as url,  # the app's lifespan builds the context and the provider
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]},
            headers={"traceparent": CLIENT_PARENT},
        )
        assert resp.status_code == 200, resp.text
        assert (await http.get("/health")).status_code == 200
    # the lifespan ended: it shut the provider down, which flushed the batch to the receiver

    spans = [s for s in servicer.spans if s.trace_id.hex() == TRACE_ID]
    tree = sorted((s.name, s.kind) for s in spans)
    assert tree == [
        ("POST /v1/chat/completions", Span.SpanKind.SPAN_KIND_SERVER),
        ("chat mock-model", Span.SpanKind.SPAN_KIND_CLIENT),
        ("smg.route", Span.SpanKind.SPAN_KIND_INTERNAL),
    ]
    assert [s.name for s in servicer.spans if s.kind == Span.SpanKind.SPAN_KIND_SERVER] == [
        "POST /v1/chat/completions"  # /health is not traced
    ]
