"""A tool call made through the MCP endpoint is traced like a tool loop's, as a ``tools/call`` span, and
the two are told apart by ``smg.tool.caller``; an in-memory exporter, the scripted worker, the ``faults``
MCP server as a real process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from smg.testing.gateway import RunningGateway
from smg.testing.processes import running
from smg.testing.worker import RunningWorker
from tests.conftest import chat_body, make_settings
from tests.mcp.endpoint._stack import mcp_client
from tests.observability.conftest import finished_spans

pytestmark = pytest.mark.e2e


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


@pytest.fixture
def faults_url() -> Iterator[str]:
    args = [sys.executable, "-m", "mcp_servers.faults", "--transport", "streamable-http", "--port", "0"]
    with running(args, "MCP_SERVER_READY") as (_proc, url):
        yield url


def _tool_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "tools/call echo"]


async def test_endpoint_and_loop_calls_are_both_tools_call_spans_told_apart_by_their_caller(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    faults_url: str,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), tracer_provider=provider)
    spec = {"name": "faults", "transport": "streamable-http", "url": faults_url}
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http:
        assert (await http.post("/mcp/servers", json=spec)).status_code == 201
        tools = [{"type": "mcp", "server_label": "faults", "require_approval": "never"}]
        body = chat_body('CALL faults__echo {"text": "loop"}', tools=tools)
        assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
    async with mcp_client(gw.url + "/mcp") as client:
        failed = await client.call_tool("faults__flaky", {"p": 1.0})
        assert failed.is_error
        assert not (await client.call_tool("faults__echo", {"text": "client"})).is_error
    await finished_spans(exporter, 1)

    callers = sorted(str((s.attributes or {}).get("smg.tool.caller")) for s in _tool_spans(exporter))
    assert callers == ["loop", "mcp_client"]
    for span in _tool_spans(exporter):
        attributes = span.attributes or {}
        assert attributes["smg.mcp.server"] == "faults"
        assert attributes["mcp.method.name"] == "tools/call"
        assert attributes["smg.tool.status"] == "ok"
    (flaky,) = [s for s in exporter.get_finished_spans() if s.name == "tools/call flaky"]
    assert (flaky.attributes or {})["smg.tool.caller"] == "mcp_client"
    assert (flaky.attributes or {})["smg.tool.status"] == "error"
    assert not flaky.status.is_ok
