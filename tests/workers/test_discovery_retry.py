"""With health checks disabled, a worker whose model discovery failed is asked again, with exponential
backoff, until it answers or is removed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from smg.settings import HealthSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import running_worker
from smg.workers.retry import until_done
from smg.workers.worker import worker_id
from tests._helpers import assert_error, closed_port_url, eventually
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"


class GatedSleep:
    """The worker pool's ``sleep`` seam: records each delay; a sleep ends only when the test lets it."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.cancelled = 0
        self._tokens = asyncio.Semaphore(0)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        try:
            await self._tokens.acquire()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    def release(self) -> None:
        self._tokens.release()

    async def reached(self, count: int) -> None:
        """Wait until ``count`` sleeps have begun."""
        await eventually(lambda: len(self.delays) == count)


async def _gateway_without_health_checks(
    start_gateway: Callable[..., Any], stack: AsyncExitStack, url: str, sleep: GatedSleep
) -> tuple[RunningGateway, httpx.AsyncClient]:
    settings = make_settings((url,), health=HealthSettings(enabled=False))
    gw: RunningGateway = await start_gateway(settings, pool_sleep=sleep)
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    return gw, client


async def test_a_worker_down_at_start_serves_its_model_once_it_comes_up(
    start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> None:
    url = closed_port_url()
    sleep = GatedSleep()
    gw, client = await _gateway_without_health_checks(start_gateway, stack, url, sleep)
    assert_error(await client.post(CHAT, json=chat_body()), 503, "no_available_workers")
    await sleep.reached(1)

    await stack.enter_async_context(running_worker(port=urlsplit(url).port or 0))
    sleep.release()
    await eventually(lambda: gw.context.registry.get(url).models is not None)
    resp = await client.post(CHAT, json=chat_body())

    assert resp.status_code == 200, resp.text
    assert (await client.get("/v1/models")).json()["data"][0]["id"] == "mock-model"
    assert sleep.delays == [1.0]  # found: no further retry


async def test_discovery_backs_off_to_a_minute_and_stops_when_the_worker_is_removed(
    start_gateway: Callable[..., Any], stack: AsyncExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    url = closed_port_url()
    sleep = GatedSleep()
    with caplog.at_level(logging.WARNING, logger="smg.workers"):
        _, client = await _gateway_without_health_checks(start_gateway, stack, url, sleep)
        for tries in range(1, 9):
            await sleep.reached(tries)
            sleep.release()
        await sleep.reached(9)

    assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    failed = [r for r in caplog.records if "model discovery failed" in r.getMessage()]
    assert len(failed) == 9  # one discovery before each wait: the one at registration, then one per retry
    assert (await client.delete(f"/workers/{worker_id(url)}")).status_code == 200
    await eventually(lambda: sleep.cancelled == 1)
    assert len(sleep.delays) == 9


async def test_the_backoff_policy_retries_a_run_that_raised_and_ends_at_the_first_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delays: list[float] = []
    outcomes: list[bool | Exception] = [RuntimeError("bug"), False, True]

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async def run() -> bool:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.ERROR, logger="smg.workers"):
        done: bool = await until_done(sleep=sleep, job="a job")(run)

    assert done is True
    assert (delays, outcomes) == ([1.0, 2.0], [])
    [record] = caplog.records
    assert record.getMessage() == "a job failed; next try in 1 s" and record.exc_info is not None
