"""Admission control: a bounded number of requests hold a permit, a bounded queue waits for one."""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from smg.errors import AdmissionQueueFull, AdmissionQueueTimeout
from smg.settings.groups import AdmissionSettings


class AdmissionObserver(Protocol):
    def on_admission(self, decision: str) -> None: ...
    def on_queue(self, *, queued: int, inflight: int) -> None: ...


class Admission:
    """``acquire`` a permit before serving, ``release`` it when the response is fully sent.

    ``limit`` None means unbounded (permits are still counted).
    """

    def __init__(
        self, limit: int | None, *, queue_size: int, queue_timeout_secs: float, observer: AdmissionObserver
    ) -> None:
        self._limit = limit
        self._queue_size = queue_size
        self._queue_timeout = queue_timeout_secs
        self._observer = observer
        self._sem = asyncio.Semaphore(limit) if limit is not None else None
        self.inflight = 0
        self.queued = 0

    @classmethod
    def for_process(
        cls, settings: AdmissionSettings, processes: int, *, observer: AdmissionObserver
    ) -> Admission:
        """One serving process's share of the instance's limits when ``processes`` serve it: the
        concurrency bound and the queue size each divided by ``processes``, rounded up."""
        limit = settings.limit
        return cls(
            None if limit is None else math.ceil(limit / processes),
            queue_size=math.ceil(settings.queue_size / processes),
            queue_timeout_secs=settings.queue_timeout_secs,
            observer=observer,
        )

    async def acquire(self) -> None:
        """Raises AdmissionQueueFull (429) when the queue is full, AdmissionQueueTimeout (503) after
        waiting ``queue_timeout_secs``."""
        if self._sem is not None:
            if self._sem.locked() or self.queued:
                if self.queued >= self._queue_size:
                    self._observer.on_admission("rejected")
                    raise AdmissionQueueFull(
                        f"{self._limit} requests in flight and {self.queued} queued; retry later",
                        retry_after_secs=max(1, round(self._queue_timeout / 10)),
                    )
                await self._wait()
            else:
                await self._sem.acquire()
        self.inflight += 1
        self._observer.on_admission("allowed")
        self._observer.on_queue(queued=self.queued, inflight=self.inflight)

    async def _wait(self) -> None:
        assert self._sem is not None
        self.queued += 1
        self._observer.on_queue(queued=self.queued, inflight=self.inflight)
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._sem.acquire()
        except TimeoutError:
            self._observer.on_admission("rejected")
            raise AdmissionQueueTimeout(
                f"request waited {self._queue_timeout:g}s for an admission permit"
            ) from None
        finally:
            self.queued -= 1

    def release(self) -> None:
        self.inflight -= 1
        if self._sem is not None:
            self._sem.release()
        self._observer.on_queue(queued=self.queued, inflight=self.inflight)
