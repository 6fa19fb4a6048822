"""What the admin API adds for the console: a worker's last breaker transition and its last failed
attempts (bounded, newest first, nothing kept for a success), and each tool's input schema, on a
gateway with a scripted worker and the ``calc`` MCP server (a real stdio process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.views import tool_view
from smg.mcp.types import ToolInfo
from smg.settings import BreakerSettings, RetrySettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from smg.workers.breaker import BreakerState, CircuitBreaker
from tests._helpers import CALC
from tests.conftest import chat_body, make_settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def start(worker: RunningWorker, start_gateway: Callable[..., Any]) -> Callable[..., Any]:
    """``await start(failure_threshold=N)``: a gateway (loopback admin) on the worker, one attempt per
    request so each request is one attempt."""

    async def run(failure_threshold: int) -> RunningGateway:
        settings = make_settings(
            (worker.url,),
            breaker=BreakerSettings(failure_threshold=failure_threshold, timeout_secs=3600),
            retry=RetrySettings(max_retries=1),
        )
        gateway: RunningGateway = await start_gateway(settings)
        return gateway

    return run


async def _worker_view(http: httpx.AsyncClient) -> dict[str, Any]:
    [view] = (await http.get("/workers")).json()["workers"]
    assert isinstance(view, dict)
    return view


async def test_a_worker_keeps_its_last_five_failed_attempts_newest_first_and_nothing_for_a_success(
    start: Callable[..., Any], worker: RunningWorker
) -> None:
    gateway: RunningGateway = await start(failure_threshold=100)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        fresh = await _worker_view(http)
        assert fresh["recent_errors"] == [] and fresh["breaker_changed_at"] is None
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200
        assert (await _worker_view(http))["recent_errors"] == []

        before = time.time()
        for status in (500, 502, 503, 504, 500, 503, 429):
            worker.faults.status = status
            assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == status
        worker.faults.status = 400  # a client's error is not the worker's
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 400
        worker.faults.status = None
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200
        view = await _worker_view(http)

    errors = view["recent_errors"]
    assert [e["status"] for e in errors] == [429, 503, 500, 504, 503]
    assert errors[0]["error"] == "UpstreamStatusError: worker answered HTTP 429"
    stamps = [e["at"] for e in errors]
    assert stamps == sorted(stamps, reverse=True) and before - 1 <= stamps[-1] <= stamps[0] <= time.time() + 1
    assert view["circuit_breaker"] == "closed" and view["breaker_changed_at"] is None


async def test_a_transport_failure_is_kept_without_a_status(
    start_gateway: Callable[..., Any], worker: RunningWorker
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens there
    settings = make_settings((worker.url,), retry=RetrySettings(max_retries=1))
    gateway: RunningGateway = await start_gateway(settings)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        added = await http.post("/workers", json={"url": dead})
        assert added.status_code == 201
        worker_id = added.json()["id"]
        gateway.context.registry.get(worker_id).models = frozenset({"mock-model"})
        gateway.context.registry.get(worker_id).healthy = True
        for _ in range(4):  # round robin: every other request goes to the dead one
            await http.post("/v1/chat/completions", json=chat_body())
        view = (await http.get(f"/workers/{worker_id}")).json()
    assert view["recent_errors"], view
    assert all(
        e["status"] is None and e["error"].startswith("UpstreamConnectError: ") for e in view["recent_errors"]
    )


async def test_the_view_dates_the_last_breaker_transition(
    start: Callable[..., Any], worker: RunningWorker
) -> None:
    gateway: RunningGateway = await start(failure_threshold=2)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        before = time.time()
        worker.faults.status = 503
        for _ in range(2):
            assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 503
        after = time.time()
        view = await _worker_view(http)
    assert view["circuit_breaker"] == "open"
    assert before <= view["breaker_changed_at"] <= after


def test_half_open_is_dated_when_the_timeout_passed_not_when_it_is_noticed() -> None:
    now = [1000.0]
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=1, timeout_secs=30), clock=lambda: now[0])
    breaker.record_failure()
    opened = breaker.changed_at
    assert breaker.state is BreakerState.OPEN and opened is not None
    now[0] += 30 + 600  # noticed ten minutes after the timeout passed
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.changed_at is not None
    assert abs(breaker.changed_at - (time.time() - 600)) < 60


def test_a_tool_without_a_schema_shows_an_empty_object_schema() -> None:
    spec = ServerSpec(name="s", transport="streamable-http", url="http://127.0.0.1:1/mcp")
    bare = tool_view(spec, ToolInfo(server="s", name="t", description=None, input_schema={}))
    assert bare["input_schema"] == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}
    assert (
        tool_view(spec, ToolInfo(server="s", name="t", description=None, input_schema=schema))["input_schema"]
        == schema
    )


async def test_every_tool_view_carries_the_tool_input_schema(
    start: Callable[..., Any],
) -> None:
    gateway: RunningGateway = await start(failure_threshold=10)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        added = await http.post("/mcp/servers", json=CALC)
        assert added.status_code == 201, added.text
        one = (await http.get("/mcp/servers/calc")).json()["tools"]
        listed = [t for t in (await http.get("/mcp/tools")).json()["tools"] if t["server"] == "calc"]
        refreshed = (await http.post("/mcp/servers/calc/refresh")).json()["tools"]
    for tools in (one, listed, refreshed):
        [evaluate] = [t for t in tools if t["name"] == "evaluate"]
        schema = evaluate["input_schema"]
        assert schema["type"] == "object"
        assert schema["properties"]["expression"]["type"] == "string"
        assert schema["required"] == ["expression"]
