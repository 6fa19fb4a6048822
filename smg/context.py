"""The composition root: builds the object graph from `Settings` and closes it in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from smg.api.admission import Admission
from smg.api.auth import KeyAuth
from smg.console.stats import INTERVAL_SECS, RecentStats, sampling
from smg.database import Database, database_location
from smg.keys.service import watched_keys
from smg.mcp.control import McpControl
from smg.mcp.registry.hosts import HostAllowList
from smg.mcp.registry.store import RegistryStore
from smg.mcp.registry.yaml_config import static_servers
from smg.mcp.runtime.pool import McpPool
from smg.mcp.runtime.request_servers import RequestServers
from smg.observability.metrics import Metrics
from smg.observability.observers import (
    ApprovalMetrics,
    HttpMetrics,
    LoopMetrics,
    McpMetrics,
    RouterMetrics,
    StorageMetrics,
    WorkerMetrics,
)
from smg.observability.totals import totals_reader
from smg.observability.tracing import NullTracing, TracerProviderLike, Tracing, make_tracing
from smg.observability.tracing_setup import OwnedTracerProvider, configure_tracing
from smg.observability.tracing_setup import instrument_app as _instrument_app
from smg.responses.service import ResponsesService
from smg.routing.budgets import LoopBudgets
from smg.routing.chat import ChatService
from smg.routing.loop import ToolLoop
from smg.routing.passthrough import PassThroughService, passthrough_services
from smg.routing.recent_loops import RecentLoops
from smg.settings import RequestLimits, Settings
from smg.settings.groups import MCP_SERVERS_KEY
from smg.workers.breaker import CircuitBreaker
from smg.workers.client import WorkerClient
from smg.workers.discovery import WorkerFileWatcher
from smg.workers.dispatch import Dispatcher
from smg.workers.policies import make_policy
from smg.workers.pool import WorkerPool
from smg.workers.retry import Sleep
from smg.workers.worker import WorkerRegistry

if TYPE_CHECKING:
    from fastapi import FastAPI

T = TypeVar("T")
_PROBE_TIMEOUT_SECS = 30.0


@dataclass
class AppContext:
    """The built object graph. It provides what the api layer reads from the app (`smg.api.deps.ApiContext`,
    checked by the type checker where `smg.app.create_app` attaches it); the api never imports it."""

    settings: Settings
    metrics: Metrics
    http_observer: HttpMetrics
    auth: KeyAuth
    admission: Admission
    pool: WorkerPool
    dispatcher: Dispatcher
    chat: ChatService
    completions: PassThroughService
    embeddings: PassThroughService
    responses: ResponsesService
    mcp: McpControl
    tracing: Tracing | NullTracing
    worker_file: WorkerFileWatcher | None = None  # set with --worker-file
    recent_loops: RecentLoops | None = None  # the tool loops' ring (`GET /loops/recent`)
    recent_stats: RecentStats | None = None  # the overview's ring (`GET /stats/recent`)

    @property
    def max_body(self) -> int:
        return self.settings.server.max_payload_size

    @property
    def request_limits(self) -> RequestLimits:
        return self.settings.limits

    @property
    def registry(self) -> WorkerRegistry:
        return self.pool.registry


def instrument_app(
    app: FastAPI, settings: Settings, context: AppContext | None
) -> tuple[OwnedTracerProvider | None, bool]:
    """Give ``app`` the server-span instrumentation when tracing is on (`smg.observability.tracing_setup`),
    before it serves: with ``context``, as its tracing says; without, as ``settings`` say, and then the
    tracer provider is built now. Returns the provider built now, for the app's lifespan to pass to
    `build_context` and shut down (None when tracing is off, or the context owns it), and whether the
    instrumentation was installed."""
    if context is not None:
        return None, _instrument_app(app, context.tracing)
    provider = configure_tracing(settings.trace)
    return provider, _instrument_app(app, make_tracing(provider))


@contextlib.asynccontextmanager
async def _in_own_task(cm: contextlib.AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter and exit ``cm`` in one dedicated task (the mcp SDK and anyio task groups require entry and
    exit in the same task; the caller's enter and exit may run in different tasks)."""
    entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def owner() -> None:
        try:
            async with cm as value:
                entered.set_result(value)
                await stop.wait()
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(exc)
            raise

    task = asyncio.create_task(owner(), name="smg-owner")
    try:
        yield await entered
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def build_context(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    tracer_provider: TracerProviderLike | None = None,
    pool_sleep: Sleep = asyncio.sleep,
    stats_interval: float = INTERVAL_SECS,
) -> AsyncIterator[AppContext]:
    """Build every component, register the ``--worker-urls`` and ``--worker-file`` workers, open the MCP
    servers of the registry and the YAML config, run the health prober and the registry and worker-file
    watchers; yields the context and tears it all down on exit. ``clock``, ``sleep`` and ``rng`` are seams
    for tests, and so is ``tracer_provider`` (an OpenTelemetry provider, used instead of the one
    ``--enable-trace`` builds, and not shut down here). ``pool_sleep`` is the worker pool's (the health
    prober's and the discovery retries'); ``sleep`` the request retries'; ``stats_interval`` the sampler's."""
    metrics = metrics or Metrics()
    worker_observer = WorkerMetrics(metrics)
    http_observer = HttpMetrics(metrics)
    async with contextlib.AsyncExitStack() as stack:
        if tracer_provider is None:
            built = configure_tracing(settings.trace)
            if built is not None:
                stack.callback(built.shutdown)
            tracer_provider = built
        tracing = make_tracing(tracer_provider)
        client = await stack.enter_async_context(
            WorkerClient(request_timeout_secs=settings.workers.request_timeout_secs)
        )
        registry = WorkerRegistry()
        # A model label value is a name some registered worker serves, never just what a client sent.
        metrics.model_label.served_by(lambda model: any(w.serves(model) for w in registry))
        pool = WorkerPool(
            registry,
            client,
            breaker=settings.breaker,
            health=settings.health,
            observer=worker_observer,
            clock=clock,
            sleep=pool_sleep,
        )
        stack.push_async_callback(pool.aclose)
        # --worker-urls and the config file's workers: registered once, at start-up
        await asyncio.gather(
            *(pool.add(w.url, api_key=w.api_key, source="flags") for w in settings.workers.static)
        )
        watcher = WorkerFileWatcher(settings.workers.file_path, pool) if settings.workers.file_path else None
        if watcher is not None:
            await watcher.sync_once()
        dispatcher = Dispatcher(
            registry,
            client,
            make_policy(settings.workers.policy),
            settings.retry,
            observer=worker_observer,
            tracer=tracing,
            sleep=sleep,
            rng=rng,
        )
        share = settings.server.process_count  # limits hold for the instance: a process gets its share
        admission = Admission.for_process(settings.admission, share, observer=http_observer)
        database = Database(database_location(settings, stack))
        storage = StorageMetrics(metrics, storage_type=database.storage_type)
        keys = await stack.enter_async_context(
            watched_keys(database.keys(storage), http_observer, rpm_share=share)
        )
        servers = database.registry(storage)
        mcp = await _mcp_control(settings, stack, metrics, servers, clock=clock, tracing=tracing)
        await stack.enter_async_context(database.watching(registry=mcp.sync, keys=keys.sync))
        budgets = LoopBudgets(
            max_iterations=settings.mcp.max_iterations,
            max_tool_calls=settings.mcp.max_tool_calls,
            deadline_secs=settings.mcp.loop_timeout_secs,
            max_repeated_calls=settings.mcp.max_repeated_calls,
        )
        tool_loop = ToolLoop(
            dispatcher,
            mcp.pool,
            budgets=budgets,
            observer=LoopMetrics(metrics),
            tracer=tracing,
            clock=clock,
            recent=RecentLoops(settings.mcp.recent_loops),
        )
        for name, job in (
            ("smg-health-prober", pool.run_prober()),
            ("smg-mcp-registry-watch", mcp.run_sync_loop(settings.mcp.registry_poll_secs)),
        ):
            stack.callback(asyncio.create_task(job, name=name).cancel)
        if watcher is not None:
            stack.callback(asyncio.create_task(watcher.run(), name="smg-worker-file-watch").cancel)
        stats = await stack.enter_async_context(sampling(totals_reader(metrics), stats_interval))
        completions, embeddings = passthrough_services(
            dispatcher, observer=lambda endpoint: RouterMetrics(metrics, endpoint=endpoint), tracer=tracing
        )
        yield AppContext(
            settings=settings,
            metrics=metrics,
            http_observer=http_observer,
            auth=KeyAuth(settings.auth.api_keys, settings.auth.admin_api_keys, keys=keys),
            admission=admission,
            pool=pool,
            dispatcher=dispatcher,
            chat=ChatService(
                dispatcher, observer=RouterMetrics(metrics), tools=tool_loop, catalog=mcp, tracer=tracing
            ),
            completions=completions,
            embeddings=embeddings,
            responses=await stack.enter_async_context(  # its background runs end before what they use
                ResponsesService(
                    tool_loop,
                    database.responses(settings.responses, storage),
                    catalog=mcp,
                    budgets=budgets,
                    observer=RouterMetrics(metrics, endpoint="responses"),
                    tracer=tracing,
                    policy=dispatcher.policy_name,
                    approvals=ApprovalMetrics(metrics),
                    request_servers=RequestServers.of(settings.mcp, McpMetrics(metrics)),
                    max_background=settings.responses.max_background,
                )
            ),
            mcp=mcp,
            tracing=tracing,
            worker_file=watcher,
            recent_loops=tool_loop.recent,
            recent_stats=stats,
        )


async def _mcp_control(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    metrics: Metrics,
    registry: RegistryStore,
    *,
    clock: Callable[[], float],
    tracing: Tracing | NullTracing,
) -> McpControl:
    static = static_servers(settings.mcp.config_path, settings.mcp.servers_file, key=MCP_SERVERS_KEY)
    mcp_pool = await stack.enter_async_context(
        _in_own_task(
            McpPool(
                observer=McpMetrics(metrics),
                breaker_factory=lambda _name: CircuitBreaker(settings.breaker, clock=clock),
                tools_ttl=settings.mcp.tools_ttl_secs,
                clock=clock,
                # the W3C trace headers on every HTTP request to an MCP server; none when tracing is off
                headers_hook=tracing.propagation_headers if isinstance(tracing, Tracing) else None,
                max_output_bytes=settings.mcp.max_tool_output_bytes,
            )
        )
    )
    control = McpControl(
        registry,
        mcp_pool,
        static=static,
        probe_timeout=_PROBE_TIMEOUT_SECS,
        hosts=HostAllowList(settings.mcp.allowed_hosts),
    )
    await control.sync(force=True)
    return control
