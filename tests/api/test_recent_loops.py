"""GET /loops/recent: the last tool loops of chat (streamed and not) and the Responses API, newest first,
with their calls and stop reasons, from a gateway with the scripted worker and a real MCP server
process; pass-through requests are not listed; the ring keeps only its size; the admin plane's rules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from smg.settings import AuthSettings, McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._procs import Procs
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e

ADMIN_KEY, DATA_KEY = "admin-key-for-loops", "data-key-for-loops"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
DATA = {"Authorization": f"Bearer {DATA_KEY}"}
MCP = [{"type": "mcp", "server_label": "faults", "require_approval": "never"}]
# Round 1: one call that answers and one that fails; round 2: the final answer.
SCRIPT = 'CALL faults__pid {}\nCALL faults__flaky {"p": 1, "seed": 1}'
EXPECTED_CALLS = [("faults", "pid", "ok", 1, False), ("faults", "flaky", "error", 1, False)]


@pytest.fixture(scope="module")
def faults_url() -> Iterator[str]:
    faults = Procs()
    try:
        yield faults.mcp_faults()[1]
    finally:
        faults.stop_all()


@pytest.fixture
def start(worker: RunningWorker, start_gateway: Callable[..., Any], faults_url: str) -> Callable[..., Any]:
    """``await start(recent_loops=N)``: a gateway with admin and data keys and the faults server."""

    async def run(tracer_provider: TracerProvider | None = None, **mcp: Any) -> RunningGateway:
        gateway: RunningGateway = await start_gateway(
            make_settings(
                (worker.url,),
                auth=AuthSettings(api_keys=(DATA_KEY,), admin_api_keys=(ADMIN_KEY,)),
                mcp=McpSettings(**mcp),
            ),
            tracer_provider=tracer_provider,
        )
        async with httpx.AsyncClient(base_url=gateway.url, headers=ADMIN, timeout=60) as admin:
            server = {"name": "faults", "transport": "streamable-http", "url": faults_url}
            added = await admin.post("/mcp/servers", json=server)
            assert added.status_code == 201, added.text
        return gateway

    return run


@pytest.fixture
async def gw(start: Callable[..., Any]) -> RunningGateway:
    gateway: RunningGateway = await start()
    return gateway


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.url, headers=DATA, timeout=60) as c:
        yield c


async def _chat(
    client: httpx.AsyncClient,
    request_id: str,
    *,
    tools: bool = True,
    stream: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    payload = {"model": "mock-model", "messages": [{"role": "user", "content": SCRIPT}], "stream": stream}
    if tools:
        payload["tools"] = MCP
    resp = await client.post(
        "/v1/chat/completions", json=payload, headers={"X-Request-Id": request_id} | (headers or {})
    )
    assert resp.status_code == 200, resp.text
    return resp


async def _recent(gw: RunningGateway, query: str = "") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN, timeout=60) as admin:
        resp = await admin.get("/loops/recent" + query)
    assert resp.status_code == 200, resp.text
    listed: dict[str, Any] = resp.json()
    return listed


def _calls(entry: dict[str, Any]) -> list[tuple[str, str, str, int, bool]]:
    return [(c["server"], c["tool"], c["status"], c["iteration"], c["retried"]) for c in entry["calls"]]


async def test_chat_streamed_and_not_and_responses_loops_are_listed_newest_first_with_their_calls(
    gw: RunningGateway, client: httpx.AsyncClient
) -> None:
    await _chat(client, "loop-chat")
    streamed = await _chat(client, "loop-stream", stream=True)
    assert "data: [DONE]" in streamed.text
    responses = await client.post(
        "/v1/responses",
        json={"model": "mock-model", "input": SCRIPT, "tools": MCP},
        headers={"X-Request-Id": "loop-responses"},
    )
    assert responses.status_code == 200, responses.text
    listed = await _recent(gw)
    assert listed["object"] == "list" and listed["has_more"] is False
    entries = listed["data"]
    assert [(e["request_id"], e["endpoint"]) for e in entries] == [
        ("loop-responses", "responses"),
        ("loop-stream", "chat.completions"),
        ("loop-chat", "chat.completions"),
    ]
    for entry in entries:
        assert entry["object"] == "tool_loop"
        assert entry["model"] == "mock-model"
        assert entry["iterations"] == 2
        assert entry["stop_reason"] == "completed"
        assert entry["error_code"] is None
        assert entry["caller"] is None  # an --api-key value names no key
        assert entry["trace_id"] is None  # tracing is off
        assert _calls(entry) == EXPECTED_CALLS
        assert all(isinstance(c["duration_ms"], int) and c["duration_ms"] >= 0 for c in entry["calls"])
        assert entry["started_at"] <= entry["ended_at"]
    assert entries[0]["started_at"] >= entries[2]["started_at"]


async def test_a_pass_through_request_is_not_listed(gw: RunningGateway, client: httpx.AsyncClient) -> None:
    await _chat(client, "with-loop")
    await _chat(client, "pass-through", tools=False)
    await _chat(client, "pass-through-stream", tools=False, stream=True)
    entries = (await _recent(gw))["data"]
    assert [e["request_id"] for e in entries] == ["with-loop"]


async def test_with_tracing_on_an_entry_names_the_trace_of_its_request(start: Callable[..., Any]) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gw: RunningGateway = await start(tracer_provider=provider)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with httpx.AsyncClient(base_url=gw.url, headers=DATA, timeout=60) as client:
        await _chat(client, "traced", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    [entry] = (await _recent(gw))["data"]
    assert entry["trace_id"] == trace_id
    routes = [s for s in exporter.get_finished_spans() if s.name == "smg.route"]
    assert [format(s.context.trace_id, "032x") for s in routes if s.context is not None] == [trace_id]
    provider.shutdown()


async def test_the_ring_drops_the_oldest_past_its_size_and_limit_pages(start: Callable[..., Any]) -> None:
    gw: RunningGateway = await start(recent_loops=2)
    async with httpx.AsyncClient(base_url=gw.url, headers=DATA, timeout=60) as client:
        for n in range(3):
            await _chat(client, f"loop-{n}")
    assert [e["request_id"] for e in (await _recent(gw))["data"]] == ["loop-2", "loop-1"]
    first = await _recent(gw, "?limit=1")
    assert [e["request_id"] for e in first["data"]] == ["loop-2"]
    assert first["has_more"] is True


async def test_size_zero_records_nothing(start: Callable[..., Any]) -> None:
    gw: RunningGateway = await start(recent_loops=0)
    async with httpx.AsyncClient(base_url=gw.url, headers=DATA, timeout=60) as client:
        await _chat(client, "unrecorded")
    assert await _recent(gw) == {"object": "list", "data": [], "has_more": False}


async def test_a_scoped_key_is_named_and_its_secret_never_shown(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN, timeout=60) as admin:
        created = await admin.post("/keys", json={"name": "loops-team", "servers": ["faults"]})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=60) as client:
        await _chat(client, "scoped")
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN, timeout=60) as admin:
        resp = await admin.get("/loops/recent")
        refused = await admin.get("/loops/recent", headers=headers)
    assert [(e["request_id"], e["caller"]) for e in resp.json()["data"]] == [("scoped", "loops-team")]
    assert secret not in resp.text
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


async def test_the_admin_plane_rules_hold(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as anyone:
        missing = await anyone.get("/loops/recent")
        data_key = await anyone.get("/loops/recent", headers=DATA)
        bad = [await anyone.get(f"/loops/recent?limit={v}", headers=ADMIN) for v in ("0", "1001", "x")]
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert data_key.status_code == 403
    assert data_key.headers["x-smg-error-code"] == data_key.json()["error"]["code"] == "forbidden"
    for resp in bad:
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == "limit"
        assert resp.json()["error"]["code"] == "invalid_request"
        assert resp.headers["x-smg-error-code"] == resp.json()["error"]["code"]
