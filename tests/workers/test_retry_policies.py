"""tenacity runs the worker layer's retry policies: worker attempts once a first attempt failed (never
before), the health prober (probes, and the discovery of models still unknown), and the worker-file
poll. Real scripted workers and an in-process gateway on 127.0.0.1."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from tenacity import stop_after_attempt, wait_fixed

from smg.observability.metrics import Metrics
from smg.observability.observers import WorkerMetrics
from smg.settings import BreakerSettings, HealthSettings, RetrySettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker
from smg.workers.client import WorkerClient
from smg.workers.discovery import WorkerFileWatcher
from smg.workers.pool import WorkerPool
from smg.workers.retry import JitteredBackoff, backoff_secs
from smg.workers.worker import WorkerRegistry
from tests._helpers import RecordingSleep, sample
from tests.conftest import chat_body, make_settings
from tests.tenacity_spy import record_tenacity_runs

CHAT = "/v1/chat/completions"


class _Stop(Exception):
    """Raised by a test's sleep to end a loop that runs forever."""


async def _client(stack: AsyncExitStack, gw: RunningGateway) -> httpx.AsyncClient:
    return await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_only_a_failed_first_attempt_hands_the_request_to_a_tenacity_controller(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(fail_every=2))  # requests 2, 4, ... fail
    sleep = RecordingSleep()
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), sleep=sleep)
    client = await _client(stack, gw)
    runs = record_tenacity_runs(monkeypatch)

    first = await client.post(CHAT, json=chat_body("one", stream=stream))
    assert first.status_code == 200
    assert runs == []  # answered by the first attempt: no controller was built

    second = await client.post(CHAT, json=chat_body("two", stream=stream))

    assert second.status_code == 200 and "two" in second.text
    assert worker.stats.chat_requests == 3
    (run,) = runs
    assert run.attempts == 2  # tenacity counted the plain first attempt and its retry
    assert isinstance(run.controller.stop, stop_after_attempt)
    assert run.controller.stop.max_attempt_number == RetrySettings(max_retries=5).attempts
    assert isinstance(run.controller.wait, JitteredBackoff)
    assert sleep.delays == [pytest.approx(run.idle_for)]
    # tenacity's before_sleep hook is what fed the retry metrics
    assert sample(metrics, "smg_worker_retries_total") == 1
    assert sample(metrics, "smg_worker_retry_backoff_seconds_sum") == pytest.approx(run.idle_for)
    assert sample(metrics, "smg_worker_retries_exhausted_total") == 0


async def test_an_exhausted_budget_is_tenacitys_stop_and_its_exhaustion_hook(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(status=503))
    retry = RetrySettings(max_retries=4, initial_backoff_ms=100, backoff_multiplier=2, jitter_factor=0.2)
    sleep = RecordingSleep()
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), retry=retry), sleep=sleep, rng=random.Random(11)
    )
    client = await _client(stack, gw)
    runs = record_tenacity_runs(monkeypatch)

    resp = await client.post(CHAT, json=chat_body())

    assert resp.status_code == 503 and resp.headers["x-smg-error-code"] == "upstream_503"
    assert worker.stats.chat_requests == 4
    (run,) = runs
    assert run.attempts == 4
    expected = random.Random(11)
    assert sleep.delays == [backoff_secs(n, retry, expected) for n in (1, 2, 3)]
    assert run.idle_for == pytest.approx(sum(sleep.delays))
    assert sample(metrics, "smg_worker_retries_total") == 3
    assert sample(metrics, "smg_worker_retries_exhausted_total") == 1


async def test_failures_the_policy_never_retries_build_no_controller(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused: RunningWorker = await start_worker(faults=Faults(status=400))
    failing: RunningWorker = await start_worker(faults=Faults(status=503))
    no_retry = make_settings((failing.url,), retry=RetrySettings(max_retries=1))
    gw_400: RunningGateway = await start_gateway(make_settings((refused.url,)), sleep=RecordingSleep())
    gw_once: RunningGateway = await start_gateway(no_retry, sleep=RecordingSleep())
    runs = record_tenacity_runs(monkeypatch)

    assert (await (await _client(stack, gw_400)).post(CHAT, json=chat_body())).status_code == 400
    assert (await (await _client(stack, gw_once)).post(CHAT, json=chat_body())).status_code == 503

    assert runs == []
    assert refused.stats.chat_requests == 1 and failing.stats.chat_requests == 1
    assert sample(metrics, "smg_worker_retries_exhausted_total") == 0


async def test_a_retry_under_tenacity_still_prefers_a_worker_not_yet_tried(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad: RunningWorker = await start_worker(faults=Faults(status=503))
    good: RunningWorker = await start_worker()
    urls = (bad.url, good.url)  # round robin: the first request goes to the failing worker
    settings = make_settings(urls, breaker=BreakerSettings(enabled=False))
    gw: RunningGateway = await start_gateway(settings, sleep=RecordingSleep())
    runs = record_tenacity_runs(monkeypatch)

    resp = await (await _client(stack, gw)).post(CHAT, json=chat_body())

    assert resp.status_code == 200
    assert (bad.stats.chat_requests, good.stats.chat_requests) == (1, 1)
    (run,) = runs
    assert run.attempts == 2


async def test_the_prober_runs_every_interval_under_tenacity_and_a_round_that_raised_is_retried(
    worker: RunningWorker,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = HealthSettings(interval_secs=7.0, failure_threshold=1, success_threshold=1)
    client = WorkerClient(request_timeout_secs=10)
    delays: list[float] = []

    async def sleep(secs: float) -> None:
        delays.append(secs)
        if len(delays) == 2:  # round 2 meets a client that is closed: it raises
            await client.__aexit__(None, None, None)
        elif len(delays) == 3:
            await client.__aenter__()
            worker.faults.health_status = 503
        elif len(delays) == 4:
            raise _Stop

    async with client:
        pool = WorkerPool(
            WorkerRegistry(),
            client,
            breaker=BreakerSettings(),
            health=health,
            observer=WorkerMetrics(metrics),
            sleep=sleep,
        )
        added = await pool.add(worker.url)
        runs = record_tenacity_runs(monkeypatch)
        with caplog.at_level(logging.ERROR, logger="smg.workers"), pytest.raises(_Stop):
            await pool.run_prober()

    assert delays == [7.0] * 4
    (run,) = runs
    assert isinstance(run.controller.wait, wait_fixed) and run.idle_for == 21.0
    assert run.attempts == 4  # rounds 1-3 ran; the 4th was due when the test stopped the prober
    assert worker.stats.health_checks == 2  # rounds 1 and 3 reached the worker
    assert [r.getMessage() for r in caplog.records] == ["health prober failed; next run in 7 s"]
    assert not added.healthy  # round 3 saw the 503 (threshold 1)
    assert sample(metrics, "smg_worker_health", worker=worker.url) == 0


async def test_a_worker_file_that_cannot_be_read_is_retried_at_the_next_poll_under_tenacity(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings())
    path = tmp_path / "workers.yaml"  # missing at the first poll
    delays: list[float] = []

    async def sleep(secs: float) -> None:
        delays.append(secs)
        if len(delays) == 2:
            path.write_text(f"- {worker.url}\n", encoding="utf-8")
        elif len(delays) == 3:
            raise _Stop

    watcher = WorkerFileWatcher(path, gw.context.pool, interval_secs=2.0, sleep=sleep)
    runs = record_tenacity_runs(monkeypatch)
    with pytest.raises(_Stop):
        await watcher.run()

    assert delays == [2.0, 2.0, 2.0]
    assert worker.url in gw.context.pool.registry
    (run,) = runs
    assert isinstance(run.controller.wait, wait_fixed) and run.attempts == 3
