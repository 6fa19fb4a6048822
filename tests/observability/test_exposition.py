"""What the metrics listener serves: counters and histograms without prometheus_client's ``_created``
series, tool calls labelled with SMG's ``result`` values. In-process gateway, scripted worker, the real
calc MCP server over stdio, and the metrics listener on a free loopback port."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from prometheus_client.parser import text_string_to_metric_families

from smg.observability.metrics import Metrics
from smg.observability.server import metrics_listener
from smg.settings import McpSettings
from smg.testing.worker import RunningWorker
from tests._helpers import CALC, eventually, sample
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"
TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]


async def _scrape(stack: AsyncExitStack, metrics: Metrics) -> str:
    port = await stack.enter_async_context(metrics_listener(metrics, host="127.0.0.1", port=0))
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert resp.status_code == 200
    return resp.text


async def test_the_metrics_listener_serves_no_created_series(
    worker: RunningWorker, start_gateway: object, stack: AsyncExitStack, metrics: Metrics
) -> None:
    gw = await start_gateway(make_settings((worker.url,)))  # type: ignore[operator]  # fixture factory
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        assert (await client.post(CHAT, json=chat_body())).status_code == 200
        assert (await client.post(CHAT, json=chat_body(stream=True))).status_code == 200
    await eventually(lambda: sample(metrics, "smg_router_ttft_seconds_count", model="mock-model") == 1)

    text = await _scrape(stack, metrics)

    families = {f.name: f for f in text_string_to_metric_families(text)}
    kinds = {f.type for f in families.values() if f.samples}
    assert {"counter", "histogram", "gauge"} <= kinds  # counters and histograms with samples are there
    assert [s.name for f in families.values() for s in f.samples if s.name.endswith("_created")] == []
    assert "_created" not in text
    # the head SMG's monitoring guide shows for its first family
    assert (
        "# HELP smg_http_requests_total Total HTTP requests\n# TYPE smg_http_requests_total counter\n" in text
    )


async def test_tool_calls_are_labelled_success_or_error_with_the_finer_outcome_beside(
    worker: RunningWorker, start_gateway: object, stack: AsyncExitStack, metrics: Metrics
) -> None:
    settings = make_settings((worker.url,), mcp=McpSettings(registry_poll_secs=3600, tools_ttl_secs=3600))
    gw = await start_gateway(settings)  # type: ignore[operator]  # fixture factory
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:
        assert (await client.post("/mcp/servers", json=CALC)).status_code == 201
        for script in (
            'CALL calc__evaluate {"expression": "2+2"}',  # ok
            'CALL calc__evaluate {"expression": "x + 1"}',  # calc refuses a name: the tool's error
            "CALL calc__evaluate not-json",  # arguments that are not a JSON object: not sent
        ):
            resp = await client.post(CHAT, json=chat_body(script, tools=TOOLS))
            assert resp.status_code == 200, resp.text

    text = await _scrape(stack, metrics)

    calls = {
        (s.labels["result"], s.labels["outcome"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "smg_mcp_tool_calls"
        for s in f.samples
        if s.labels["server"] == "calc" and s.labels["tool_name"] == "evaluate"
    }
    assert calls == {("success", "ok"): 1, ("error", "error"): 1}
    # the gateway answered the malformed call itself: counted by the loop's stage, not as an MCP call
    assert sample(metrics, "smg_router_stage_duration_seconds_count", stage="tool_exec") == 3
    recipe = sum(v for (result, _), v in calls.items() if result == "success") / sum(
        calls.values()
    )  # sum(rate(...{result="success"})) / sum(rate(...)), as SMG's tool success rate recipe reads it
    assert recipe == 0.5


# SMG's default buckets for its duration, TTFT and TPOT histograms (29, from 1 ms to 2 h).
SMG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 45.0, 60.0,
               90.0, 120.0, 180.0, 240.0, 300.0, 480.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0,
               float("inf")]  # fmt: skip


def test_every_seconds_histogram_has_smgs_buckets(metrics: Metrics) -> None:
    metrics.worker_retry_backoff.observe(0.1)
    metrics.router_stage.labels("select").observe(0.1)
    metrics.router_ttft.labels("mock-model").observe(0.1)

    observed = 0
    for family in text_string_to_metric_families(metrics.render().decode()):
        if family.type != "histogram":
            continue
        assert family.name.endswith("_seconds"), family.name
        buckets = [float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")]
        if buckets:
            observed += 1
            assert buckets == SMG_BUCKETS, family.name
    assert observed == 3
