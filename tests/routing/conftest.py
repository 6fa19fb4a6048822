"""Harness for the tool-loop tests: a real scripted worker on 127.0.0.1, a real Dispatcher, and an
in-process fake `McpRuntime` that records each call's start and end on a logical clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from smg.mcp.errors import McpServerNotFound
from smg.mcp.types import ServerStatus, ToolInfo, ToolOutcome, ToolStatus
from smg.protocol import ChatRequest, parse_chat_request
from smg.routing.budgets import LoopBudgets
from smg.routing.loop import ToolLoop
from smg.routing.tools import ToolPlan, resolve_tools
from smg.settings import BreakerSettings, RetrySettings
from smg.spans import NULL_TRACING
from smg.testing.worker import RunningWorker
from smg.workers.breaker import CircuitBreaker
from smg.workers.client import WorkerClient
from smg.workers.dispatch import Dispatcher
from smg.workers.hooks import NullWorkerObserver
from smg.workers.policies import make_policy
from smg.workers.worker import Worker, WorkerRegistry

Handler = Callable[[dict[str, Any]], Awaitable[tuple[ToolStatus, str]]]


@dataclass
class CallLog:
    server: str
    tool: str
    arguments: dict[str, Any]
    start: int
    end: int = -1


async def _now(_: dict[str, Any]) -> tuple[ToolStatus, str]:
    return "ok", "12:00"


async def _add(args: dict[str, Any]) -> tuple[ToolStatus, str]:
    return "ok", str(args.get("a", 0) + args.get("b", 0))


async def _echo(args: dict[str, Any]) -> tuple[ToolStatus, str]:
    return "ok", orjson.dumps(args).decode()


async def _fail(_: dict[str, Any]) -> tuple[ToolStatus, str]:
    return "error", "boom"


async def _slow(_: dict[str, Any]) -> tuple[ToolStatus, str]:
    return "timeout", "tool call timed out after 5s"


def _info(server: str, name: str) -> ToolInfo:
    return ToolInfo(server, name, f"{name} of {server}", {"type": "object", "properties": {}})


@dataclass
class FakeRuntime:
    """Implements McpRuntime. ``advance`` is called once per tool call (to move an injected clock)."""

    handlers: dict[str, dict[str, Handler]] = field(
        default_factory=lambda: {
            "clock": {"now": _now, "echo": _echo},
            "math": {"add": _add, "fail": _fail, "slow": _slow},
        }
    )
    calls: list[CallLog] = field(default_factory=list)
    advance: Callable[[], None] | None = None
    _ticks: itertools.count[int] = field(default_factory=itertools.count)

    def statuses(self) -> list[ServerStatus]:
        return [ServerStatus(name, "connected", len(tools)) for name, tools in sorted(self.handlers.items())]

    async def list_tools(
        self, servers: list[str] | None = None, *, refresh: bool = False
    ) -> dict[str, list[ToolInfo]]:
        names = servers if servers is not None else list(self.handlers)
        for name in names:
            if name not in self.handlers:
                raise McpServerNotFound(name)
        return {name: [_info(name, tool) for tool in self.handlers[name]] for name in names}

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        if server not in self.handlers:
            raise McpServerNotFound(server)
        log = CallLog(server, tool, arguments, start=next(self._ticks))
        self.calls.append(log)
        if self.advance is not None:
            self.advance()
        await asyncio.sleep(0)  # a yield point, as any real call has: lets the other calls of a round start
        status, text = await self.handlers[server][tool](arguments)
        log.end = next(self._ticks)
        return ToolOutcome(server, tool, status, text, 0.003)


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    worker: RunningWorker
    dispatcher: Dispatcher
    registry: WorkerRegistry
    runtime: FakeRuntime

    def loop(self, **budgets: Any) -> ToolLoop:
        clock = budgets.pop("clock", None)
        kwargs: dict[str, Any] = {"budgets": LoopBudgets(**budgets)}
        if clock is not None:
            kwargs["clock"] = clock
        return ToolLoop(self.dispatcher, self.runtime, tracer=NULL_TRACING, **kwargs)


def request(text: str, *, tools: list[dict[str, Any]] | None = None, **extra: Any) -> ChatRequest:
    """A chat request whose last user message is ``text`` (the worker's tool script)."""
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": text}],
        "tools": tools if tools is not None else [{"type": "mcp", "server_label": "clock"}, MATH],
        **extra,
    }
    return parse_chat_request(orjson.dumps(body), headers={"Content-Type": "application/json"})


MATH = {"type": "mcp", "server_label": "math", "require_approval": "never"}
LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


async def plan_of(loop: ToolLoop, req: ChatRequest) -> ToolPlan:
    plan = await resolve_tools(req.body, loop.runtime)
    assert plan is not None
    return plan


@pytest.fixture
async def harness(start_worker: Callable[..., Any], stack: AsyncExitStack) -> Harness:
    worker: RunningWorker = await start_worker()
    client = await stack.enter_async_context(WorkerClient(request_timeout_secs=10))
    registry = WorkerRegistry()
    registry.add(
        Worker(url=worker.url, breaker=CircuitBreaker(BreakerSettings()), models=frozenset({"mock-model"}))
    )
    dispatcher = Dispatcher(
        registry,
        client,
        make_policy("round_robin"),
        RetrySettings(max_retries=1),
        observer=NullWorkerObserver(),
        tracer=NULL_TRACING,
    )
    return Harness(worker=worker, dispatcher=dispatcher, registry=registry, runtime=FakeRuntime())
