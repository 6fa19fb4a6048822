"""Retries, circuit breakers, health and unreachable workers, through the whole app over real HTTP."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest

from smg.observability.metrics import Metrics
from smg.settings import BreakerSettings, HealthSettings, RetrySettings, WorkerSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker
from smg.testing.worker_render import error_body
from smg.workers.retry import backoff_secs
from tests._helpers import FakeClock, RecordingSleep, assert_error, closed_port_url, sample
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"


async def _client(stack: AsyncExitStack, gw: RunningGateway) -> httpx.AsyncClient:
    return await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))


def _routing(urls: tuple[str, ...], **workers: Any) -> WorkerSettings:
    return WorkerSettings(urls=urls, policy="round_robin", **{"request_timeout_secs": 10, **workers})


async def _breaker_of(client: httpx.AsyncClient, url: str) -> str:
    resp = await client.get("/workers")
    assert resp.status_code == 200
    [found] = [w for w in resp.json()["workers"] if w["url"] == url]
    state: str = found["circuit_breaker"]
    return state


# --- circuit breaker ---------------------------------------------------------------------------------


async def test_a_failing_worker_opens_its_breaker_and_closes_after_half_open_success(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    good = [await start_worker(), await start_worker()]
    bad: RunningWorker = await start_worker(faults=Faults(status=503))
    urls = (good[0].url, bad.url, good[1].url)
    clock = FakeClock()
    settings = make_settings(
        urls,
        workers=_routing(urls),
        breaker=BreakerSettings(failure_threshold=3, success_threshold=1, timeout_secs=30),
    )
    gw: RunningGateway = await start_gateway(settings, clock=clock, sleep=RecordingSleep())
    client = await _client(stack, gw)

    for i in range(10):  # sequential: the breaker opens after exactly `failure_threshold` attempts
        assert (await client.post(CHAT, json=chat_body(f"s{i}"))).status_code == 200
    for batch in range(9):
        replies = await asyncio.gather(
            *(client.post(CHAT, json=chat_body(f"b{batch}-{i}")) for i in range(10))
        )
        assert [r.status_code for r in replies] == [200] * 10
    assert bad.stats.chat_requests == 3  # the threshold, then the open breaker kept it out
    assert await _breaker_of(client, bad.url) == "open"
    assert sample(metrics, "smg_worker_cb_state", worker=bad.url) == 1
    assert sample(metrics, "smg_worker_cb_state", worker=good[0].url) == 0

    bad.faults.status = None
    clock.advance(29)
    assert await _breaker_of(client, bad.url) == "open"
    clock.advance(2)
    assert await _breaker_of(client, bad.url) == "half_open"
    assert sample(metrics, "smg_worker_cb_state", worker=bad.url) == 2

    for _ in range(10):
        assert (await client.post(CHAT, json=chat_body())).status_code == 200
        if bad.stats.chat_requests > 3:
            break
    assert bad.stats.chat_requests == 4
    assert await _breaker_of(client, bad.url) == "closed"
    assert sample(metrics, "smg_worker_cb_state", worker=bad.url) == 0
    transitions = {
        (frm, to): sample(metrics, "smg_worker_cb_transitions_total", worker=bad.url, to=to, **{"from": frm})
        for frm, to in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    }
    assert transitions == {k: 1.0 for k in transitions}


async def test_any_failure_in_half_open_reopens_the_breaker(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    good: RunningWorker = await start_worker()
    bad: RunningWorker = await start_worker(faults=Faults(status=500))
    urls = (good.url, bad.url)
    clock = FakeClock()
    settings = make_settings(
        urls,
        workers=_routing(urls),
        breaker=BreakerSettings(failure_threshold=2, success_threshold=2, timeout_secs=30),
    )
    gw: RunningGateway = await start_gateway(settings, clock=clock, sleep=RecordingSleep())
    client = await _client(stack, gw)
    for _ in range(6):
        assert (await client.post(CHAT, json=chat_body())).status_code == 200
    assert await _breaker_of(client, bad.url) == "open"

    clock.advance(31)
    for _ in range(4):
        assert (await client.post(CHAT, json=chat_body())).status_code == 200
    assert bad.stats.chat_requests == 3
    assert await _breaker_of(client, bad.url) == "open"
    assert (
        sample(metrics, "smg_worker_cb_transitions_total", worker=bad.url, to="open", **{"from": "half_open"})
        == 1
    )


# --- retries -----------------------------------------------------------------------------------------


async def test_periodic_worker_failures_are_retried_invisibly(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(fail_every=2))
    sleep = RecordingSleep()
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)), sleep=sleep)
    client = await _client(stack, gw)
    for i in range(20):
        resp = await client.post(CHAT, json=chat_body(f"n{i}"))
        assert resp.status_code == 200
        assert resp.json()["choices"][0]["message"]["content"] == f"echo: n{i}"
    # Attempts 2, 4, 6, ... fail: each request after the first fails once, then succeeds on retry.
    assert worker.stats.chat_requests == 1 + 19 * 2
    assert len(sleep.delays) == 19
    assert sample(metrics, "smg_worker_retries_total") == 19
    assert sample(metrics, "smg_worker_retries_exhausted_total") == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_retries_back_off_with_jitter_then_pass_the_last_503_through(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
    stream: bool,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(status=503))
    retry = RetrySettings(
        max_retries=5, initial_backoff_ms=100, backoff_multiplier=2, max_backoff_ms=1000, jitter_factor=0.2
    )
    sleep = RecordingSleep()
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), retry=retry), sleep=sleep, rng=random.Random(0)
    )
    client = await _client(stack, gw)

    resp = await client.post(CHAT, json=chat_body(stream=stream))

    assert resp.status_code == 503
    assert resp.content == error_body("injected fault", status=503, code="injected_fault")
    assert resp.headers["x-smg-error-code"] == "upstream_503"
    assert worker.stats.chat_requests == 5
    expected_rng = random.Random(0)
    assert sleep.delays == [backoff_secs(n, retry, expected_rng) for n in range(1, 5)]
    for n, delay in enumerate(sleep.delays, start=1):
        base_ms = min(100 * 2 ** (n - 1), 1000)
        assert base_ms * 0.8 / 1000 <= delay <= base_ms * 1.2 / 1000
    assert sample(metrics, "smg_worker_retries_total") == 4
    assert sample(metrics, "smg_worker_retries_exhausted_total") == 1
    assert sample(metrics, "smg_worker_retry_backoff_seconds_count") == 4


async def test_a_retry_prefers_a_worker_not_yet_tried(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> None:
    good: RunningWorker = await start_worker()
    bad: RunningWorker = await start_worker(faults=Faults(status=503))
    urls = (good.url, bad.url)
    # Breaker off, so the failing worker stays a candidate for every request.
    settings = make_settings(urls, workers=_routing(urls), breaker=BreakerSettings(enabled=False))
    gw: RunningGateway = await start_gateway(settings, sleep=RecordingSleep())
    client = await _client(stack, gw)
    for i in range(20):
        before = bad.stats.chat_requests
        resp = await client.post(CHAT, json=chat_body(f"p{i}"))
        assert resp.status_code == 200
        assert bad.stats.chat_requests - before <= 1
    assert bad.stats.chat_requests >= 10  # the failing worker really was picked first, often
    assert good.stats.chat_requests == 20


async def test_a_stream_broken_after_the_first_byte_ends_with_an_error_event_and_is_not_retried(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(drop_after_chunks=2))
    spare: RunningWorker = await start_worker()
    urls = (worker.url, spare.url)
    gw: RunningGateway = await start_gateway(
        make_settings(urls, workers=_routing(urls)), sleep=RecordingSleep()
    )
    client = await _client(stack, gw)

    async with client.stream("POST", CHAT, json=chat_body("one two three four", stream=True)) as resp:
        body = await resp.aread()

    assert resp.status_code == 200
    events = [e for e in body.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    assert events[-1] == b"data: [DONE]"
    error = orjson.loads(events[-2][len(b"data: ") :])
    assert set(error) == {"error"}
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["code"] == "upstream_protocol_error"
    assert b'"role":"assistant"' in events[0]
    assert worker.stats.chat_requests == 1
    assert spare.stats.chat_requests == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_a_hung_worker_times_out_with_504(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack, stream: bool
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(hang=True))
    settings = make_settings(
        (worker.url,),
        workers=_routing((worker.url,), request_timeout_secs=0.3),
        retry=RetrySettings(max_retries=1),
    )
    gw: RunningGateway = await start_gateway(settings)
    client = await _client(stack, gw)
    assert_error(await client.post(CHAT, json=chat_body(stream=stream)), 504, "upstream_timeout")
    assert worker.stats.chat_requests == 1


# --- health ------------------------------------------------------------------------------------------


async def test_all_workers_unhealthy_gives_503_and_recovers_after_probes(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    worker: RunningWorker = await start_worker()
    settings = make_settings(
        (worker.url,), health=HealthSettings(failure_threshold=1, success_threshold=1, interval_secs=3600)
    )
    gw: RunningGateway = await start_gateway(settings)
    client = await _client(stack, gw)
    assert (await client.post(CHAT, json=chat_body())).status_code == 200
    assert (await client.get("/readiness")).status_code == 200

    worker.faults.health_status = 503
    await gw.context.pool.probe_once()

    assert_error(await client.post(CHAT, json=chat_body()), 503, "no_available_workers")
    assert_error(await client.post(CHAT, json=chat_body(stream=True)), 503, "no_available_workers")
    ready = await client.get("/readiness")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert isinstance(ready.json()["reason"], str) and ready.json()["reason"]
    assert sample(metrics, "smg_worker_health", worker=worker.url) == 0
    assert (await client.get("/health")).status_code == 200
    served_before = worker.stats.chat_requests

    worker.faults.health_status = 200
    await gw.context.pool.probe_once()

    assert (await client.post(CHAT, json=chat_body())).status_code == 200
    assert worker.stats.chat_requests == served_before + 1
    ready = await client.get("/readiness")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert sample(metrics, "smg_worker_health", worker=worker.url) == 1


async def test_a_worker_unreachable_at_start_gives_503_until_a_live_worker_is_added(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> None:
    dead = closed_port_url()
    gw: RunningGateway = await start_gateway(make_settings((dead,)))
    client = await _client(stack, gw)
    assert_error(await client.post(CHAT, json=chat_body()), 503, "no_available_workers")
    assert (await client.get("/readiness")).status_code == 503

    live: RunningWorker = await start_worker()
    added = await client.post("/workers", json={"url": live.url})
    assert added.status_code == 201
    assert added.json()["healthy"] is True
    assert added.json()["models"] == ["mock-model"]

    for _ in range(4):
        assert (await client.post(CHAT, json=chat_body())).status_code == 200
    assert live.stats.chat_requests == 4
    assert (await client.get("/readiness")).status_code == 200


# --- what counts as a worker failure -----------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        False,
        pytest.param(
            True,
        ),
    ],
    ids=["non_stream", "stream"],
)
async def test_a_workers_4xx_answers_do_not_open_its_breaker(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack, stream: bool
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(status=400))
    settings = make_settings(
        (worker.url,), breaker=BreakerSettings(failure_threshold=3, success_threshold=1, timeout_secs=30)
    )
    gw: RunningGateway = await start_gateway(settings, clock=FakeClock(), sleep=RecordingSleep())
    client = await _client(stack, gw)
    for _ in range(4):
        resp = await client.post(CHAT, json=chat_body(stream=stream))
        assert resp.status_code == 400
        assert resp.content == error_body("injected fault", status=400, code="injected_fault")
    assert worker.stats.chat_requests == 4
    assert await _breaker_of(client, worker.url) == "closed"
