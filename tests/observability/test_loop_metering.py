"""Router TTFT/TPOT/token metrics for tool-loop requests: the whole app, the scripted worker and a real
stdio MCP server; the samples are read from the gateway's metrics registry and its live exposition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import generate_latest

from smg.observability.metrics import Metrics
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import CALC, eventually, sample
from tests.conftest import chat_body, make_settings

LOOP = 'CALL calc__evaluate {"expression": "6*7"}'
TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]


@pytest.fixture
async def gw(worker: RunningWorker, start_gateway: Callable[..., Any]) -> RunningGateway:
    gateway: RunningGateway = await start_gateway(make_settings((worker.url,)))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as admin:
        assert (await admin.post("/mcp/servers", json=CALC)).status_code == 201
    return gateway


async def _post(gw: RunningGateway, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http:
        return await http.post("/v1/chat/completions", json=body)


def _events(resp: httpx.Response) -> list[dict[str, Any]]:
    return [orjson.loads(e[6:]) for e in resp.text.split("\n\n") if e.startswith("data: {")]


def _content(resp: httpx.Response) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in _events(resp) if e["choices"])


async def _routed(metrics: Metrics, streaming: str) -> None:
    labels = {"router_type": "http", "model": "mock-model", "endpoint": "chat", "streaming": streaming}
    await eventually(lambda: sample(metrics, "smg_router_requests_total", **labels) == 1)


async def test_a_streamed_tool_loop_records_ttft_tpot_and_tokens_summed_over_rounds(
    gw: RunningGateway, metrics: Metrics
) -> None:
    body = chat_body(LOOP, tools=TOOLS, stream=True, stream_options={"include_usage": True})

    resp = await _post(gw, body)

    assert resp.status_code == 200 and _content(resp) == "tool results: 42"
    (usage,) = (e["usage"] for e in _events(resp) if e.get("usage"))
    await _routed(metrics, "true")
    assert sample(metrics, "smg_router_ttft_seconds_count", model="mock-model") == 1
    assert sample(metrics, "smg_router_tpot_seconds_count", model="mock-model") == 1
    assert (
        sample(metrics, "smg_router_tokens_total", model="mock-model", type="input") == usage["prompt_tokens"]
    )
    output = sample(metrics, "smg_router_tokens_total", model="mock-model", type="output")
    assert output == usage["completion_tokens"]
    ttft = sample(metrics, "smg_router_ttft_seconds_sum", model="mock-model")
    assert ttft is not None and ttft > 0
    exposition = generate_latest(metrics.registry).decode()
    for family in (
        "smg_router_ttft_seconds_count",
        "smg_router_tpot_seconds_count",
        "smg_router_tokens_total",
    ):
        assert f'{family}{{model="mock-model"' in exposition


async def test_a_streamed_tool_loop_counts_tokens_even_when_the_client_did_not_ask_for_usage(
    gw: RunningGateway, metrics: Metrics
) -> None:
    resp = await _post(gw, chat_body(LOOP, tools=TOOLS, stream=True))

    assert resp.status_code == 200 and _content(resp) == "tool results: 42"
    assert not any(e.get("usage") for e in _events(resp))
    await _routed(metrics, "true")
    inputs = sample(metrics, "smg_router_tokens_total", model="mock-model", type="input")
    outputs = sample(metrics, "smg_router_tokens_total", model="mock-model", type="output")
    assert inputs is not None and inputs > 0 and outputs is not None and outputs > 0
    assert sample(metrics, "smg_router_ttft_seconds_count", model="mock-model") == 1


async def test_a_non_streamed_tool_loop_records_the_tokens_of_every_round(
    gw: RunningGateway, metrics: Metrics
) -> None:
    resp = await _post(gw, chat_body(LOOP, tools=TOOLS))

    assert resp.status_code == 200, resp.text
    usage, extension = resp.json()["usage"], resp.json()["smg"]
    assert extension["iterations"] == 2
    await _routed(metrics, "false")
    assert (
        sample(metrics, "smg_router_tokens_total", model="mock-model", type="input") == usage["prompt_tokens"]
    )
    output = sample(metrics, "smg_router_tokens_total", model="mock-model", type="output")
    assert output == usage["completion_tokens"]
    assert sample(metrics, "smg_router_ttft_seconds_count", model="mock-model") is None  # streams only
