"""Label values come only from server-controlled sets: the ``model`` label from the models registered
workers serve (workers added at run time included), ``method`` from the standard HTTP methods. The whole
app in-process with the scripted worker and the real calc MCP server over stdio; samples are read from the
gateway's metrics registry."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from smg.observability.metrics import Metrics
from smg.settings import McpSettings, WorkerSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import CALC, assert_error, eventually, sample
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"
TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
LOOP = 'CALL calc__evaluate {"expression": "6*7"}'
# Nothing fires on a timer during a test: no registry polls, no tool-list expiry, no health probes.
QUIET_MCP = McpSettings(registry_poll_secs=3600, tools_ttl_secs=3600)

Series = set[tuple[str, tuple[tuple[str, str], ...]]]


def _series(metrics: Metrics) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in metrics.registry.collect()
        for s in family.samples
    }


def _label_values(metrics: Metrics, name: str, label: str) -> set[str]:
    return {
        s.labels[label] for family in metrics.registry.collect() for s in family.samples if s.name == name
    }


async def _with_calc(gw: RunningGateway, stack: AsyncExitStack) -> httpx.AsyncClient:
    """A client of ``gw``, once the calc MCP server is registered."""
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=60))
    assert (await client.post("/mcp/servers", json=CALC)).status_code == 201
    return client


async def _unknown_models(client: httpx.AsyncClient, count: int, *, concurrency: int = 8) -> None:
    """``count`` tool-loop requests (every other one streamed) naming models nobody serves: all 404."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        body = chat_body(LOOP, model=f"ghost-{secrets.token_hex(6)}", tools=TOOLS, stream=i % 2 == 1)
        async with gate:
            resp = await client.post(CHAT, json=body)
        assert_error(resp, 404, "model_not_found")

    await asyncio.gather(*(one(i) for i in range(count)))


@pytest.fixture
async def gw(worker: RunningWorker, start_gateway: Callable[..., Any]) -> RunningGateway:
    gateway: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=QUIET_MCP))
    return gateway


async def test_two_thousand_unknown_model_names_add_no_series_to_any_family(
    gw: RunningGateway, metrics: Metrics, stack: AsyncExitStack
) -> None:
    client = await _with_calc(gw, stack)
    assert (await client.post(CHAT, json=chat_body(LOOP, tools=TOOLS))).status_code == 200
    await _unknown_models(client, 4)  # the 404's own series (path, status, error code) exist from here
    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    before = _series(metrics)

    await _unknown_models(client, 2000)

    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    assert _series(metrics) - before == set()
    assert _label_values(metrics, "smg_mcp_tool_iterations_total", "model") == {"mock-model"}
    assert _label_values(metrics, "smg_router_requests_total", "model") == {"mock-model"}
    refused = {"path": CHAT, "status_code": "404", "error_code": "model_not_found"}
    assert sample(metrics, "smg_http_responses_total", **refused) == 2004


async def test_a_request_for_a_model_nobody_serves_counts_no_model_call_and_no_routed_request(
    gw: RunningGateway, metrics: Metrics, stack: AsyncExitStack
) -> None:
    client = await _with_calc(gw, stack)

    await _unknown_models(client, 2)

    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    for family in ("smg_mcp_tool_iterations_total", "smg_router_requests_total", "smg_router_tokens_total"):
        assert _label_values(metrics, family, "model") == set(), family
    assert _label_values(metrics, "smg_router_request_errors_total", "error_type") == set()
    assert _label_values(metrics, "smg_mcp_loop_stops_total", "reason") == set()


async def test_a_tool_loop_counts_one_iteration_per_answered_model_call(
    gw: RunningGateway, metrics: Metrics, stack: AsyncExitStack
) -> None:
    client = await _with_calc(gw, stack)

    for stream in (False, True):
        resp = await client.post(CHAT, json=chat_body(LOOP, tools=TOOLS, stream=stream))
        assert resp.status_code == 200, resp.text

    await eventually(lambda: sample(metrics, "smg_mcp_loop_stops_total", reason="completed") == 2)
    assert sample(metrics, "smg_mcp_tool_iterations_total", model="mock-model") == 4


async def _add_by_admin(gw: RunningGateway, client: httpx.AsyncClient, url: str, _: Path) -> None:
    assert (await client.post("/workers", json={"url": url})).status_code == 201


async def _add_by_file(gw: RunningGateway, client: httpx.AsyncClient, url: str, path: Path) -> None:
    await anyio.Path(path).write_text(f"- {url}\n", encoding="utf-8")
    assert gw.context.worker_file is not None
    await gw.context.worker_file.sync_once()


@pytest.mark.parametrize("add", [_add_by_admin, _add_by_file], ids=["admin_api", "worker_file"])
async def test_a_model_of_a_worker_added_at_run_time_gets_its_own_label_value(
    add: Callable[..., Any],
    worker: RunningWorker,
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    metrics: Metrics,
    stack: AsyncExitStack,
    tmp_path: Path,
) -> None:
    path = tmp_path / "workers.yaml"
    path.write_text("[]\n", encoding="utf-8")
    urls = (worker.url,)
    workers = WorkerSettings(urls=urls, policy="round_robin", request_timeout_secs=10, file_path=str(path))
    gw: RunningGateway = await start_gateway(make_settings(urls, workers=workers, mcp=QUIET_MCP))
    client = await _with_calc(gw, stack)
    await _unknown_models(client, 150)  # more distinct names than the model label's cap
    late: RunningWorker = await start_worker(models=("new-model",))

    await add(gw, client, late.url, path)

    new = {"model": "new-model"}
    assert (await client.post(CHAT, json=chat_body("one two three", **new))).status_code == 200
    resp = await client.post(CHAT, json=chat_body("four five six", stream=True, **new))
    assert resp.status_code == 200 and resp.text.endswith("data: [DONE]\n\n")
    assert (await client.post(CHAT, json=chat_body(LOOP, tools=TOOLS, **new))).status_code == 200

    routed = {"router_type": "http", "endpoint": "chat", **new}
    await eventually(lambda: sample(metrics, "smg_router_requests_total", streaming="true", **routed) == 1)
    assert sample(metrics, "smg_router_requests_total", streaming="false", **routed) == 2
    assert (sample(metrics, "smg_router_tokens_total", type="output", **new) or 0) > 0
    assert sample(metrics, "smg_router_ttft_seconds_count", **new) == 1
    assert sample(metrics, "smg_mcp_tool_iterations_total", **new) == 2
    for family in ("smg_router_requests_total", "smg_router_tokens_total", "smg_mcp_tool_iterations_total"):
        assert _label_values(metrics, family, "model") <= {"mock-model", "new-model"}, family


async def test_a_model_whose_worker_was_removed_is_not_counted_as_routed_when_refused(
    gw: RunningGateway, start_worker: Callable[..., Any], metrics: Metrics, stack: AsyncExitStack
) -> None:
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    late: RunningWorker = await start_worker(models=("new-model",))
    assert (await client.post("/workers", json={"url": late.url})).status_code == 201
    assert (await client.post(CHAT, json=chat_body(model="new-model"))).status_code == 200
    assert (await client.delete(f"/workers/{late.url}")).status_code == 200

    assert_error(await client.post(CHAT, json=chat_body(model="new-model")), 404, "model_not_found")

    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    routed = {"router_type": "http", "model": "new-model", "endpoint": "chat", "streaming": "false"}
    assert sample(metrics, "smg_router_requests_total", **routed) == 1
    assert _label_values(metrics, "smg_router_request_errors_total", "error_type") == set()
