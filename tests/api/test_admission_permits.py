"""Admission control: permits, the bounded wait queue, and what the observer is told."""

from __future__ import annotations

import asyncio

import pytest

from smg.api.admission import Admission
from smg.errors import AdmissionQueueFull, AdmissionQueueTimeout


class RecordingObserver:
    def __init__(self) -> None:
        self.decisions: list[str] = []
        self.queue: list[tuple[int, int]] = []
        self.someone_queued = asyncio.Event()

    def on_admission(self, decision: str) -> None:
        self.decisions.append(decision)

    def on_queue(self, *, queued: int, inflight: int) -> None:
        self.queue.append((queued, inflight))
        if queued:
            self.someone_queued.set()


def make_admission(
    observer: RecordingObserver, *, limit: int | None = 1, queue_size: int = 1, timeout: float = 5.0
) -> Admission:
    return Admission(limit, queue_size=queue_size, queue_timeout_secs=timeout, observer=observer)


async def test_with_the_permit_taken_the_next_request_waits_and_the_one_after_is_rejected() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer, timeout=60)
    await admission.acquire()

    waiter = asyncio.create_task(admission.acquire())
    async with asyncio.timeout(5):
        await observer.someone_queued.wait()
    assert admission.queued == 1

    with pytest.raises(AdmissionQueueFull) as info:
        await admission.acquire()

    assert info.value.status == 429
    assert info.value.code == "admission_queue_full"
    assert int(info.value.headers()["Retry-After"]) >= 1
    assert observer.decisions == ["allowed", "rejected"]
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert admission.queued == 0


async def test_release_hands_the_permit_to_the_waiter() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer)
    await admission.acquire()
    waiter = asyncio.create_task(admission.acquire())
    async with asyncio.timeout(5):
        await observer.someone_queued.wait()

    admission.release()
    async with asyncio.timeout(5):
        await waiter

    assert (admission.inflight, admission.queued) == (1, 0)
    assert observer.decisions == ["allowed", "allowed"]


async def test_a_waiter_past_the_queue_timeout_is_rejected_with_503() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer, timeout=0.05)
    await admission.acquire()

    async with asyncio.timeout(5):
        with pytest.raises(AdmissionQueueTimeout) as info:
            await admission.acquire()

    assert info.value.status == 503
    assert info.value.code == "admission_queue_timeout"
    assert (admission.inflight, admission.queued) == (1, 0)
    assert observer.decisions == ["allowed", "rejected"]


async def test_a_timed_out_waiter_leaves_the_permit_for_the_next_request() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer, timeout=0.05)
    await admission.acquire()
    with pytest.raises(AdmissionQueueTimeout):
        await admission.acquire()

    admission.release()
    async with asyncio.timeout(5):
        await admission.acquire()

    assert admission.inflight == 1


async def test_a_zero_queue_rejects_as_soon_as_the_permits_are_taken() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer, limit=2, queue_size=0)
    await admission.acquire()
    await admission.acquire()

    with pytest.raises(AdmissionQueueFull):
        await admission.acquire()

    assert observer.decisions == ["allowed", "allowed", "rejected"]


async def test_no_limit_never_blocks_and_still_counts_requests_in_flight() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer, limit=None, queue_size=0)

    async with asyncio.timeout(5):
        for _ in range(1000):
            await admission.acquire()

    assert admission.inflight == 1000
    assert admission.queued == 0
    admission.release()
    assert admission.inflight == 999
    assert set(observer.decisions) == {"allowed"}


async def test_the_observer_sees_queue_depth_and_requests_in_flight() -> None:
    observer = RecordingObserver()
    admission = make_admission(observer, limit=2)

    await admission.acquire()
    await admission.acquire()
    admission.release()

    assert observer.queue == [(0, 1), (0, 2), (0, 1)]
