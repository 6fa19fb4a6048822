"""The composition root: builds the object graph from `Settings` and closes it in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from smg.api.admission import Admission
from smg.api.auth import KeyAuth
from smg.observability.metrics import Metrics
from smg.observability.observers import HttpMetrics, RouterMetrics, WorkerMetrics
from smg.routing.chat import ChatService
from smg.settings import Settings
from smg.workers.client import WorkerClient
from smg.workers.dispatch import Dispatcher
from smg.workers.policies import make_policy
from smg.workers.pool import WorkerPool
from smg.workers.retry import Sleep
from smg.workers.worker import WorkerRegistry


@dataclass
class AppContext:
    settings: Settings
    metrics: Metrics
    http_observer: HttpMetrics
    auth: KeyAuth
    admission: Admission
    pool: WorkerPool
    dispatcher: Dispatcher
    chat: ChatService

    @property
    def max_body(self) -> int:
        return self.settings.server.max_payload_size

    @property
    def registry(self) -> WorkerRegistry:
        return self.pool.registry


@contextlib.asynccontextmanager
async def build_context(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> AsyncIterator[AppContext]:
    """Build every component, register the ``--worker-urls`` workers, run the health prober; yields the
    context and tears it all down on exit. ``clock``, ``sleep`` and ``rng`` are seams for tests."""
    metrics = metrics or Metrics()
    worker_observer = WorkerMetrics(metrics)
    http_observer = HttpMetrics(metrics)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            WorkerClient(request_timeout_secs=settings.workers.request_timeout_secs)
        )
        registry = WorkerRegistry()
        pool = WorkerPool(
            registry,
            client,
            breaker=settings.breaker,
            health=settings.health,
            observer=worker_observer,
            clock=clock,
        )
        await asyncio.gather(
            *(
                pool.add(url, api_key=settings.workers.api_key, source="flags")
                for url in settings.workers.urls
            )
        )
        dispatcher = Dispatcher(
            registry,
            client,
            make_policy(settings.workers.policy),
            settings.retry,
            observer=worker_observer,
            sleep=sleep,
            rng=rng,
        )
        admission = Admission(
            settings.admission.limit,
            queue_size=settings.admission.queue_size,
            queue_timeout_secs=settings.admission.queue_timeout_secs,
            observer=http_observer,
        )
        prober = asyncio.create_task(pool.run_prober(), name="smg-health-prober")
        stack.callback(prober.cancel)
        yield AppContext(
            settings=settings,
            metrics=metrics,
            http_observer=http_observer,
            auth=KeyAuth(settings.auth.api_keys, settings.auth.admin_api_keys),
            admission=admission,
            pool=pool,
            dispatcher=dispatcher,
            chat=ChatService(dispatcher, observer=RouterMetrics(metrics)),
        )
