"""docs/monitoring.md matches the live exposition, and the router's token metrics and the storage metrics
record what they say, on the HTTP path (non-stream and streams with and without a usage request)."""

from __future__ import annotations

import asyncio
import re
import shutil
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smg.mcp import McpServerExists, ServerSpec, SqliteRegistry
from smg.observability.metrics import Metrics
from smg.observability.observers import StorageMetrics
from smg.testing.gateway import RunningGateway
from tests._helpers import eventually, sample
from tests.conftest import chat_body

CHAT = "/v1/chat/completions"
DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
MODEL = {"model": "mock-model"}


def _documented() -> dict[str, str]:
    """Metric name -> type, from the tables of docs/monitoring.md."""
    rows = re.findall(r"^\| `(smg_\w+)` \| (counter|gauge|histogram) \|", DOC.read_text(), re.M)
    return dict(rows)


def _exposed(metrics: Metrics) -> dict[str, str]:
    """Metric name as scraped (counters with ``_total``) -> type, from the rendered exposition; the
    ``_created`` timestamp companions of counters and histograms are not families of their own."""
    families = list(text_string_to_metric_families(metrics.render().decode()))
    names = {f.name for f in families}
    return {
        f.name + ("_total" if f.type == "counter" else ""): f.type
        for f in families
        if not (f.name.endswith("_created") and f.name.removesuffix("_created") in names)
    }


async def _stream(client: httpx.AsyncClient, **extra: Any) -> list[dict[str, Any]]:
    """The JSON payloads of one streamed completion, ``[DONE]`` excluded (asserted last)."""
    async with client.stream("POST", CHAT, json=chat_body("tell me a story", stream=True, **extra)) as resp:
        assert resp.status_code == 200
        text = (await resp.aread()).decode()
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    return [orjson.loads(e) for e in events[:-1]]


def _usage_chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("choices") == [] and "usage" in e]


async def _drive(client: httpx.AsyncClient) -> None:
    assert (await client.post(CHAT, json=chat_body())).status_code == 200
    await _stream(client)
    await _stream(client, stream_options={"include_usage": True})


async def test_every_documented_family_is_exposed_and_every_exposed_family_is_documented(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    await _drive(client)
    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    documented, exposed = _documented(), _exposed(metrics)
    assert len(documented) >= 35
    assert documented == {name: kind for name, kind in exposed.items() if name.startswith("smg_")}


async def test_non_stream_tokens_come_from_the_usage_of_the_body(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    resp = await client.post(CHAT, json=chat_body("one two three"))
    usage = resp.json()["usage"]
    assert sample(metrics, "smg_router_tokens_total", type="input", **MODEL) == usage["prompt_tokens"]
    assert sample(metrics, "smg_router_tokens_total", type="output", **MODEL) == usage["completion_tokens"]
    assert sample(metrics, "smg_router_stage_duration_seconds_count", stage="upstream") == 1
    assert sample(metrics, "smg_router_stage_duration_seconds_count", stage="select") == 1
    assert sample(metrics, "smg_router_ttft_seconds_count", **MODEL) is None


async def test_a_stream_without_usage_request_hides_usage_but_its_tokens_are_counted(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    expected = (await client.post(CHAT, json=chat_body("tell me a story"))).json()["usage"]
    events = await _stream(client)
    assert _usage_chunks(events) == []
    assert all("usage" not in e for e in events)
    await eventually(lambda: sample(metrics, "smg_router_ttft_seconds_count", **MODEL) == 1)
    output = expected["completion_tokens"]
    assert sample(metrics, "smg_router_tokens_total", type="output", **MODEL) == 2 * output
    assert sample(metrics, "smg_router_tokens_total", type="input", **MODEL) == 2 * expected["prompt_tokens"]
    assert output > 1
    assert sample(metrics, "smg_router_tpot_seconds_count", **MODEL) == 1
    assert (sample(metrics, "smg_router_ttft_seconds_sum", **MODEL) or 0.0) > 0.0


async def test_a_stream_that_asked_for_usage_gets_the_usage_chunk_exactly_once(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    events = await _stream(client, stream_options={"include_usage": True})
    [usage_chunk] = _usage_chunks(events)
    usage = usage_chunk["usage"]
    await eventually(lambda: sample(metrics, "smg_router_ttft_seconds_count", **MODEL) == 1)
    assert sample(metrics, "smg_router_tokens_total", type="input", **MODEL) == usage["prompt_tokens"]
    assert sample(metrics, "smg_router_tokens_total", type="output", **MODEL) == usage["completion_tokens"]


async def test_the_gateway_registry_reports_storage_operations(
    gateway: RunningGateway, metrics: Metrics
) -> None:
    sqlite = {"storage_type": "sqlite"}
    assert sample(metrics, "smg_db_operations_total", operation="open", result="ok", **sqlite) == 1
    assert sample(metrics, "smg_db_operation_duration_seconds_count", operation="open", **sqlite) == 1


def test_registry_operations_are_counted_by_operation_and_result(tmp_path: Path, metrics: Metrics) -> None:
    registry = SqliteRegistry(tmp_path / "mcp.db", observer=StorageMetrics(metrics))
    spec = ServerSpec(name="clock", transport="stdio", command="python", args=("-m", "clock"))
    registry.add(spec)
    with pytest.raises(McpServerExists):
        registry.add(spec)
    sqlite = {"storage_type": "sqlite"}
    assert sample(metrics, "smg_db_operations_total", operation="add", result="ok", **sqlite) == 1
    assert (
        sample(metrics, "smg_db_operations_total", operation="add", result="mcp_server_exists", **sqlite) == 1
    )
    assert sample(metrics, "smg_db_operation_duration_seconds_count", operation="add", **sqlite) == 2


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian prometheus) is installed by .ci/run"
)
async def test_the_live_exposition_passes_promtool_check_metrics(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    await _drive(client)
    proc = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate(metrics.render())
    assert proc.returncode == 0, (out + err).decode()
