"""The worker pool: registers workers (discovering their models), removes them, and probes their health."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from smg.errors import InvalidRequest, UpstreamError, WorkerNotFound
from smg.settings import BreakerSettings, HealthSettings
from smg.workers.breaker import BreakerState, CircuitBreaker
from smg.workers.client import WorkerClient
from smg.workers.hooks import WorkerObserver
from smg.workers.retry import Sleep, every, until_done
from smg.workers.worker import Worker, WorkerRegistry

log = logging.getLogger("smg.workers")
MODELS_PATH = "/v1/models"


def _model_ids(doc: Any) -> frozenset[str]:
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise ValueError("no data list")
    return frozenset(m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str))


class WorkerPool:
    """Owns the registry's membership and the health of its workers.

    A worker whose models are unknown (discovery failed) is asked again: at each good probe when health
    checks are on, else by a retry task with exponential backoff (1 s doubling to 60 s, `until_done`)
    that ends when discovery succeeds or the worker is removed. `aclose` ends the retry tasks."""

    def __init__(
        self,
        registry: WorkerRegistry,
        client: WorkerClient,
        *,
        breaker: BreakerSettings,
        health: HealthSettings,
        observer: WorkerObserver,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.registry = registry
        self._client = client
        self._breaker = breaker
        self._health = health
        self._observer = observer
        self._clock = clock
        self._sleep = sleep
        # The retry policy of probes, and of the discovery of models still unknown: every interval.
        self._prober = every(health.interval_secs, sleep=sleep, job="health prober")
        self._streaks: dict[str, int] = {}  # url -> +n consecutive good probes, -n consecutive bad
        self._rediscovery = until_done(sleep=sleep, job="model discovery")
        self._retries: dict[str, asyncio.Task[None]] = {}  # url -> its discovery retry task

    async def add(self, url: str, *, api_key: str | None = None, source: str = "admin") -> Worker:
        """Register a worker and discover its models. An unreachable worker is registered unhealthy
        and picked up by the prober once it answers (without health checks: registered healthy, with
        its discovery retried until it answers). Raises InvalidRequest, WorkerExists."""
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest("worker URL must start with http:// or https://", param="url")
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            # the URL becomes a metric label and appears in logs and errors: it must carry no secret
            raise InvalidRequest(
                "a worker URL takes no credentials, query or fragment; send the key as api_key", param="url"
            )

        def transition(old: BreakerState, new: BreakerState) -> None:
            log.info("worker %s breaker %s -> %s", url, old.label, new.label)
            self._observer.on_breaker_transition(url, old, new)

        worker = Worker(
            url=url,
            api_key=api_key,
            breaker=CircuitBreaker(self._breaker, clock=self._clock, on_transition=transition),
        )
        self.registry.add(worker)
        await self._discover(worker)
        worker.healthy = worker.models is not None or not self._health.enabled
        if worker.models is None and not self._health.enabled:
            self._retries[url] = asyncio.create_task(
                self._retry_discovery(worker), name=f"smg-discover {url}"
            )
        # membership first: the observer keeps per-worker series for registered workers only
        self._observer.on_pool_changed([w.url for w in self.registry], source=source, change="added")
        self._observer.on_health(url, worker.healthy)
        log.info("worker %s added (models=%s, healthy=%s)", url, sorted(worker.models or ()), worker.healthy)
        return worker

    async def remove(self, key: str, *, source: str = "admin") -> Worker:
        """Remove by URL or id. Raises WorkerNotFound. In-flight requests to it finish normally."""
        worker = self.registry.remove(key)
        self._streaks.pop(worker.url, None)
        retry = self._retries.pop(worker.url, None)
        if retry is not None:
            retry.cancel()
        self._observer.on_pool_changed([w.url for w in self.registry], source=source, change="removed")
        log.info("worker %s removed", worker.url)
        return worker

    async def _discover(self, worker: Worker) -> None:
        try:
            doc = await self._client.get_json(worker, MODELS_PATH, timeout_secs=self._health.timeout_secs)
            worker.models = _model_ids(doc)
        except (UpstreamError, ValueError, KeyError) as exc:
            log.warning("worker %s: model discovery failed: %s", worker.url, exc)

    async def aclose(self) -> None:
        """Cancel the discovery retries and wait for them to end."""
        retries = list(self._retries.values())
        self._retries.clear()
        for task in retries:
            task.cancel()
        await asyncio.gather(*retries, return_exceptions=True)

    def _registered(self, worker: Worker) -> bool:
        try:
            return self.registry.get(worker.url) is worker
        except WorkerNotFound:
            return False

    async def _retry_discovery(self, worker: Worker) -> None:
        replayed = False

        async def attempt() -> bool:
            nonlocal replayed
            if not replayed:  # attempt 1 is the discovery `add` made, which failed: wait before the next
                replayed = True
                return False
            if not self._registered(worker):  # removed (or replaced) while this waited
                return True
            await self._discover(worker)
            return worker.models is not None

        try:
            await self._rediscovery.copy()(attempt)
        finally:
            if self._retries.get(worker.url) is asyncio.current_task():
                del self._retries[worker.url]
        if worker.models is not None:
            log.info("worker %s: models discovered: %s", worker.url, sorted(worker.models))

    async def probe_once(self) -> None:
        """Probe every worker once, concurrently, and apply the thresholds."""
        await asyncio.gather(*(self._probe(w) for w in self.registry))

    async def _probe(self, worker: Worker) -> None:
        ok = await self._client.probe(worker, self._health.endpoint, timeout_secs=self._health.timeout_secs)
        if ok and worker.models is None:
            await self._discover(worker)
            ok = worker.models is not None
        if worker.url not in self.registry:
            return
        streak = self._streaks.get(worker.url, 0)
        streak = (max(streak, 0) + 1) if ok else (min(streak, 0) - 1)
        self._streaks[worker.url] = streak
        if worker.healthy and -streak >= self._health.failure_threshold:
            self._set_health(worker, False)
        elif not worker.healthy and streak >= self._health.success_threshold:
            self._set_health(worker, True)

    def _set_health(self, worker: Worker, healthy: bool) -> None:
        worker.healthy = healthy
        log.warning("worker %s is now %s", worker.url, "healthy" if healthy else "unhealthy")
        self._observer.on_health(worker.url, healthy)

    async def run_prober(self) -> None:
        """Probe every ``interval_secs`` forever, the first time one interval after the start, under the
        prober's tenacity policy (a round that raised is logged and retried); returns at once when health
        checks are disabled."""
        if not self._health.enabled:
            return
        await self._sleep(self._health.interval_secs)
        await self._prober.copy()(self.probe_once)
