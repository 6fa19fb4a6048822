"""A worker removed from the pool (admin API, worker file) leaves no series behind in the exposition; the
remaining workers' series are untouched, and a worker added again starts from fresh series."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from smg.observability.metrics import Metrics
from smg.settings import BreakerSettings, WorkerSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker, WorkerConfig, running_worker
from smg.workers.worker import worker_id
from tests._helpers import RecordingSleep, eventually
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"
# Every family labelled by worker, under its exposition sample name.
PER_WORKER = {
    "smg_worker_health",
    "smg_worker_cb_state",
    "smg_worker_requests_active",
    "smg_worker_selection_total",
    "smg_worker_cb_transitions_total",
}
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _series_of(metrics: Metrics, url: str) -> Series:
    """Every sample of the rendered exposition (what /metrics serves) labelled ``worker=url``."""
    found: Series = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.labels.get("worker") == url:
                found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def _names(series: Series) -> set[str]:
    return {name for name, _ in series}


def _settings(*urls: str, **workers: Any) -> Any:
    return make_settings(
        urls,
        workers=WorkerSettings(urls=urls, policy="round_robin", request_timeout_secs=10, **workers),
        breaker=BreakerSettings(failure_threshold=1, timeout_secs=3600),
    )


async def _traffic(client: httpx.AsyncClient, bad: RunningWorker) -> None:
    """Requests over both workers; ``bad`` fails one attempt, so its breaker opens (a transition)."""
    bad.faults.status = 503
    for i in range(4):
        assert (await client.post(CHAT, json=chat_body(f"r{i}"))).status_code == 200
    bad.faults.status = None


async def test_a_worker_removed_through_the_admin_api_leaves_no_series(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    a, b = await start_worker(), await start_worker()
    gw: RunningGateway = await start_gateway(_settings(a.url, b.url), sleep=RecordingSleep())
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    await _traffic(client, b)
    assert _names(_series_of(metrics, b.url)) == PER_WORKER
    kept = _series_of(metrics, a.url)

    resp = await client.delete(f"/workers/{worker_id(b.url)}")

    assert resp.status_code == 200, resp.text
    assert _series_of(metrics, b.url) == {}
    assert _series_of(metrics, a.url) == kept


async def test_a_worker_added_again_starts_from_fresh_series(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    a, b = await start_worker(), await start_worker()
    gw: RunningGateway = await start_gateway(_settings(a.url, b.url), sleep=RecordingSleep())
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    await _traffic(client, b)
    assert (await client.delete(f"/workers/{worker_id(b.url)}")).status_code == 200

    assert (await client.post("/workers", json={"url": b.url})).status_code == 201
    fresh = _series_of(metrics, b.url)
    for i in range(4):
        assert (await client.post(CHAT, json=chat_body(f"again {i}"))).status_code == 200

    assert _names(fresh) == {"smg_worker_health", "smg_worker_cb_state"}
    assert set(fresh.values()) == {1.0, 0.0}  # healthy, breaker closed (it was open)
    after = _series_of(metrics, b.url)
    selected = [v for (name, _), v in after.items() if name == "smg_worker_selection_total"]
    assert selected == [2.0]  # counted from zero again: the two requests since it came back
    assert "smg_worker_requests_active" in _names(after)
    assert "smg_worker_cb_transitions_total" not in _names(after)


async def test_a_worker_dropped_from_the_worker_file_leaves_no_series(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
    tmp_path: Path,
) -> None:
    a, b = await start_worker(), await start_worker()
    path = tmp_path / "workers.yaml"
    path.write_text(f"- {a.url}\n- {b.url}\n", encoding="utf-8")
    gw: RunningGateway = await start_gateway(_settings(file_path=str(path)), sleep=RecordingSleep())
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    watcher = gw.context.worker_file
    assert watcher is not None
    await _traffic(client, b)
    assert _names(_series_of(metrics, b.url)) == PER_WORKER
    kept = _series_of(metrics, a.url)

    path.write_text(f"- {a.url}\n", encoding="utf-8")
    assert await watcher.sync_once() is True

    assert _series_of(metrics, b.url) == {}
    assert _series_of(metrics, a.url) == kept


async def test_a_request_that_ends_after_its_worker_was_removed_brings_no_series_back(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    a = await start_worker()
    async with contextlib.AsyncExitStack() as b_stack:
        b = await b_stack.enter_async_context(running_worker(WorkerConfig(faults=Faults(hang=True))))
        gw: RunningGateway = await start_gateway(_settings(b.url), sleep=RecordingSleep())
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
        held = asyncio.create_task(client.post(CHAT, json=chat_body("held")))
        stack.push_async_callback(_cancelled, held)
        await eventually(lambda: b.stats.chat_requests == 1)
        assert (await client.post("/workers", json={"url": a.url})).status_code == 201
        assert (await client.delete(f"/workers/{worker_id(b.url)}")).status_code == 200
        assert _series_of(metrics, b.url) == {}
    # b has stopped: its held attempt failed (attempt done, breaker opened) and was retried on a
    async with asyncio.timeout(10):
        resp = await held

    assert resp.status_code == 200, resp.text
    assert _series_of(metrics, b.url) == {}
    assert _names(_series_of(metrics, a.url)) >= {"smg_worker_health", "smg_worker_selection_total"}


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_label_shared_past_the_cap_is_removed_with_the_last_worker_using_it(metrics: Metrics) -> None:
    from smg.observability.metrics import Bounded
    from smg.observability.observers import WorkerMetrics

    metrics.worker_label = Bounded(1)
    observer = WorkerMetrics(metrics)
    pool: list[str] = []

    def change(url: str, *, add: bool) -> None:
        pool.append(url) if add else pool.remove(url)
        observer.on_pool_changed(list(pool), source="admin", change="added" if add else "removed")
        if add:
            observer.on_health(url, True)

    for url in ("http://a", "http://b", "http://c"):
        change(url, add=True)
    assert _series_of(metrics, "other") != {}  # b and c share it

    change("http://b", add=False)
    assert _series_of(metrics, "other") != {}  # c still reports under it
    change("http://c", add=False)
    assert _series_of(metrics, "other") == {}
    change("http://a", add=False)
    change("http://d", add=True)  # a's place under the cap is free again

    assert _names(_series_of(metrics, "http://d")) == {"smg_worker_health", "smg_worker_cb_state"}
