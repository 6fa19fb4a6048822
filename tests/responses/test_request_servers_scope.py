"""Request-defined MCP servers, seen from inside the gateway: their connections end with the request also
when it is cancelled, their secrets are in no span, and a key restricted to servers cannot bring one.
A real recording MCP server process on 127.0.0.1 (tests/responses/recording_mcp.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from smg.errors import McpServerForbidden
from smg.keys.scope import UNRESTRICTED, KeyScope
from smg.mcp.runtime.pool import McpPool
from smg.mcp.runtime.request_servers import RequestServer, RequestServers
from smg.responses.remote_servers import require_unscoped
from smg.settings import McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e

TOKEN = "tok-span-7c3e0b19-secret"


@pytest.fixture(scope="module")
def recording() -> Iterator[str]:
    proc = spawn([sys.executable, "-m", "tests.responses.recording_mcp"], stderr=subprocess.DEVNULL)
    try:
        yield wait_for_line(proc, "MCP_SERVER_READY")
    finally:
        stop(proc)


async def open_connections(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        count: int = (await client.get(url.replace("/mcp", "/_seen"))).json()["open"]
        return count


async def until_closed(url: str) -> None:
    with anyio.fail_after(10):
        while await open_connections(url) != 0:  # noqa: ASYNC110  # another process's state
            await anyio.sleep(0.05)


async def test_a_cancelled_request_closes_its_servers(recording: str) -> None:
    servers = RequestServers(enabled=True)
    started = anyio.Event()
    async with McpPool() as pool:
        with anyio.CancelScope() as scope:
            async with servers.open(pool, [RequestServer(0, "mine", recording, {})]) as runtime:
                assert await open_connections(recording) > 0
                async with anyio.create_task_group() as tg:

                    async def hang() -> None:
                        started.set()
                        await runtime.call_tool("mine", "hang", {})

                    tg.start_soon(hang)
                    await started.wait()
                    scope.cancel()  # as a gateway shutting down cancels a request in flight
        assert scope.cancelled_caught
    await until_closed(recording)


async def test_no_span_carries_a_request_servers_secrets(
    worker: RunningWorker, start_gateway: Callable[..., Any], recording: str, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    mcp = McpSettings(
        registry_path=str(tmp_path / "smg.db"), request_servers=True, allowed_hosts=("127.0.0.1",)
    )
    gateway: RunningGateway = await start_gateway(
        make_settings((worker.url,), mcp=mcp), tracer_provider=provider
    )
    tool = {
        "type": "mcp",
        "server_label": "mine",
        "server_url": recording,
        "require_approval": "never",
        "headers": {"X-Api-Key": TOKEN},
        "authorization": TOKEN,
    }
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0) as oai:
        response = await oai.responses.create(
            model="mock-model",
            input='CALL mine__echo {"text": "traced"}',
            tools=[tool],  # type: ignore[list-item]
        )
    assert response.output_text == "tool results: echo: traced"
    spans = exporter.get_finished_spans()
    assert any(s.name == "tools/call echo" for s in spans)
    for span in spans:
        text = repr(dict(span.attributes or {})) + repr([dict(e.attributes or {}) for e in span.events])
        assert TOKEN not in text, span.name
    await until_closed(recording)


def test_a_key_restricted_to_servers_may_not_define_one() -> None:
    server = RequestServer(2, "mine", "http://127.0.0.1:1/mcp", {"Authorization": f"Bearer {TOKEN}"})
    require_unscoped(UNRESTRICTED, [server])
    require_unscoped(KeyScope(name="k", servers=frozenset({"mine"})), [])
    with pytest.raises(McpServerForbidden) as info:
        require_unscoped(KeyScope(name="k", servers=frozenset({"mine"})), [server])
    assert info.value.param == "tools[2].server_url"
    assert TOKEN not in repr(server)
