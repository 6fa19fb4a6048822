"""Admission control: a bounded number of requests in flight, a bounded queue, the permit held for
the whole response (streams too).

To hold a request in flight deterministically the worker fails its first attempt with 503 and the
dispatcher's backoff ``sleep`` seam waits on a gate the test opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from smg.api.admission import Admission
from smg.observability.metrics import Metrics
from smg.settings import AdmissionSettings, RetrySettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker
from tests._helpers import RecordingSleep, assert_error, eventually, sample
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"


@dataclass
class Gated:
    client: httpx.AsyncClient
    worker: RunningWorker
    sleep: RecordingSleep
    admission: Admission

    async def hold_one_in_flight(self) -> asyncio.Task[httpx.Response]:
        """Start a request that holds the only permit (parked in its retry backoff) until `release`."""
        self.worker.faults.status = 503
        held = asyncio.create_task(self.client.post(CHAT, json=chat_body("held")))
        await eventually(lambda: self.admission.inflight == 1 and len(self.sleep.delays) == 1)
        self.worker.faults.status = None
        return held

    def release(self) -> None:
        self.sleep.gate.set()


def _gated_fixture(queue_timeout_secs: float) -> Any:
    @pytest.fixture
    async def fixture(
        start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack
    ) -> AsyncIterator[Gated]:
        worker: RunningWorker = await start_worker()
        settings = make_settings(
            (worker.url,),
            retry=RetrySettings(max_retries=2),
            admission=AdmissionSettings(
                max_concurrent_requests=1, queue_size=1, queue_timeout_secs=queue_timeout_secs
            ),
        )
        sleep = RecordingSleep(gated=True)
        gw: RunningGateway = await start_gateway(settings, sleep=sleep)
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
        gated = Gated(client, worker, sleep, gw.context.admission)
        try:
            yield gated
        finally:
            gated.release()  # never leave a request parked at teardown

    return fixture


gated = _gated_fixture(queue_timeout_secs=30)
gated_short_queue = _gated_fixture(queue_timeout_secs=0.2)


async def test_a_full_queue_rejects_with_429_and_retry_after(gated: Gated, metrics: Metrics) -> None:
    held = await gated.hold_one_in_flight()
    queued = asyncio.create_task(gated.client.post(CHAT, json=chat_body("queued")))
    await eventually(lambda: gated.admission.queued == 1)

    rejected = await gated.client.post(CHAT, json=chat_body("rejected"))

    assert_error(rejected, 429, "admission_queue_full")
    assert int(rejected.headers["retry-after"]) >= 1
    assert sample(metrics, "smg_http_rate_limit_total", decision="rejected") == 1
    assert sample(metrics, "smg_http_admission_queue_depth") == 1
    assert sample(metrics, "smg_http_admission_inflight") == 1

    gated.release()
    async with asyncio.timeout(10):
        done = await asyncio.gather(held, queued)
    assert [r.status_code for r in done] == [200, 200]
    assert [r.json()["choices"][0]["message"]["content"] for r in done] == ["echo: held", "echo: queued"]
    await eventually(lambda: gated.admission.inflight == 0 and gated.admission.queued == 0)


async def test_the_control_plane_and_probes_bypass_admission(gated: Gated) -> None:
    held = await gated.hold_one_in_flight()
    queued = asyncio.create_task(gated.client.post(CHAT, json=chat_body("queued")))
    await eventually(lambda: gated.admission.queued == 1)

    for path in ("/health", "/readiness", "/workers"):
        assert (await gated.client.get(path)).status_code == 200

    gated.release()
    async with asyncio.timeout(10):
        assert [r.status_code for r in await asyncio.gather(held, queued)] == [200, 200]


async def test_a_request_queued_past_the_queue_timeout_gets_503(gated_short_queue: Gated) -> None:
    gated = gated_short_queue
    held = await gated.hold_one_in_flight()

    async with asyncio.timeout(10):
        timed_out = await gated.client.post(CHAT, json=chat_body("queued"))

    assert_error(timed_out, 503, "admission_queue_timeout")
    assert gated.admission.queued == 0
    assert gated.worker.stats.chat_requests == 1  # only the held request's first attempt
    gated.release()
    async with asyncio.timeout(10):
        assert (await held).status_code == 200


async def test_the_permit_is_held_until_a_stream_has_finished(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(chunk_delay_ms=100))
    settings = make_settings(
        (worker.url,), admission=AdmissionSettings(max_concurrent_requests=1, queue_size=0)
    )
    gw: RunningGateway = await start_gateway(settings)
    admission = gw.context.admission
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))

    body = chat_body("one two three four five six", stream=True)
    async with client.stream("POST", CHAT, json=body) as resp:
        assert resp.status_code == 200
        pieces = resp.aiter_raw()
        received = [await anext(pieces)]
        # The worker is pausing between chunks: the stream is still open on the gateway.
        assert admission.inflight == 1
        assert_error(await client.post(CHAT, json=chat_body()), 429, "admission_queue_full")
        received += [piece async for piece in pieces]
    assert b"".join(received).endswith(b"data: [DONE]\n\n")

    await eventually(lambda: admission.inflight == 0)
    assert (await client.post(CHAT, json=chat_body())).status_code == 200
