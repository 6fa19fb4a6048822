"""Shared fixtures: in-process scripted workers and gateways on 127.0.0.1, fresh metrics per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from smg.observability.metrics import Metrics
from smg.settings import HealthSettings, RetrySettings, ServerSettings, Settings, WorkerSettings
from smg.testing.gateway import RunningGateway, running_gateway
from smg.testing.worker import RunningWorker, WorkerConfig, running_worker

# Real processes (scripted workers, gateways, the faults MCP server) started and stopped by PID.
pytest_plugins = ["tests._procs"]


def make_settings(urls: tuple[str, ...] = (), **groups: Any) -> Settings:
    """Settings for tests: loopback, round-robin, fast retries, slow probes (tests drive probes)."""
    defaults: dict[str, Any] = {
        "server": ServerSettings(host="127.0.0.1", port=0, prometheus_port=0),
        "workers": WorkerSettings(urls=urls, policy="round_robin", request_timeout_secs=10),
        "retry": RetrySettings(initial_backoff_ms=1, max_backoff_ms=5),
        "health": HealthSettings(interval_secs=3600),
    }
    defaults.update(groups)
    return Settings(**defaults)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


@pytest.fixture
async def worker(stack: AsyncExitStack) -> RunningWorker:
    return await stack.enter_async_context(running_worker())


StartWorker = Callable[..., Any]


@pytest.fixture
def start_worker(stack: AsyncExitStack) -> Callable[..., Any]:
    """``await start_worker(models=(...), faults=Faults(...))`` -> RunningWorker, stopped at teardown."""

    async def start(**config: Any) -> RunningWorker:
        return await stack.enter_async_context(running_worker(WorkerConfig(**config)))

    return start


@pytest.fixture
def start_gateway(stack: AsyncExitStack, metrics: Metrics) -> Callable[..., Any]:
    """``await start_gateway(settings, **context_kwargs)`` -> RunningGateway, stopped at teardown."""

    async def start(settings: Settings, **kwargs: Any) -> RunningGateway:
        kwargs.setdefault("metrics", metrics)
        cm: AbstractAsyncContextManager[RunningGateway] = running_gateway(settings, **kwargs)
        return await stack.enter_async_context(cm)

    return start


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any], worker: RunningWorker) -> RunningGateway:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    return gw


@pytest.fixture
async def client(gateway: RunningGateway, stack: AsyncExitStack) -> httpx.AsyncClient:
    return await stack.enter_async_context(httpx.AsyncClient(base_url=gateway.url, timeout=10))


def chat_body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-model", "messages": [{"role": "user", "content": text}], **extra}
