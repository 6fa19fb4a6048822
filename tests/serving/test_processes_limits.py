"""How the instance's limits divide over ``--processes N``: each serving process admits ``ceil(limit/N)``
concurrent requests and queues ``ceil(queue/N)``, and allows each key ``ceil(rpm/N)`` per minute; with
one process nothing is divided."""

from __future__ import annotations

import asyncio

import pytest

from smg.api.admission import Admission
from smg.errors import AdmissionQueueFull, KeyRateLimited
from smg.keys.record import new_record
from smg.keys.ring import KeyRing
from smg.settings import Settings
from smg.settings.groups import AdmissionSettings, ServerSettings


class _Observer:
    def on_admission(self, decision: str) -> None:
        pass

    def on_queue(self, *, queued: int, inflight: int) -> None:
        pass


async def _admitted(admission: Admission) -> tuple[int, int]:
    """(permits held, requests queued) when requests arrive until one is refused as the queue is full."""
    waiting: list[asyncio.Task[None]] = []
    try:
        while True:
            task = asyncio.create_task(admission.acquire())
            await asyncio.sleep(0)  # let it take a permit or join the queue
            if task.done():
                task.result()  # raises AdmissionQueueFull once the queue is full
            else:
                waiting.append(task)
    except AdmissionQueueFull:
        return admission.inflight, admission.queued
    finally:
        for task in waiting:
            task.cancel()


@pytest.mark.parametrize(("processes", "expected"), [(1, (10, 5)), (2, (5, 3)), (3, (4, 2))])
def test_each_process_admits_its_share_of_the_concurrency_bound_and_of_the_queue(
    processes: int, expected: tuple[int, int]
) -> None:
    settings = AdmissionSettings(max_concurrent_requests=10, queue_size=5, queue_timeout_secs=60)
    admission = Admission.for_process(settings, processes, observer=_Observer())
    assert asyncio.run(_admitted(admission)) == expected


@pytest.mark.parametrize(("share", "allowed"), [(1, 10), (2, 5), (3, 4)])
def test_each_process_allows_a_key_its_share_of_the_rpm(share: int, allowed: int) -> None:
    ring = KeyRing(rpm_share=share, clock=lambda: 100.0)
    record, secret = new_record({"name": "shared", "rpm": 10}, now=1.0)
    ring.replace([record])
    for _ in range(allowed):
        ring.admit(secret.encode())
    with pytest.raises(KeyRateLimited):
        ring.admit(secret.encode())


def test_zero_processes_means_one_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert ServerSettings(processes=0).process_count == 6
    assert ServerSettings(processes=3).process_count == 3
    assert Settings().server.process_count == 1
