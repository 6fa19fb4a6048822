"""Executing one round of MCP tool calls (the ledger let it run) and turning the outcomes into ``tool``
messages; the loop's telemetry hooks.

Every call of a round runs concurrently; each has its own timeout inside `McpRuntime.call_tool`. Nothing
here raises for a tool problem: invalid JSON arguments (answered without calling the server), a name not
in the plan, a server that went away, a tool error or a timeout all become a `ToolOutcome` whose text the
model reads in the ``tool`` message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

from smg.mcp.errors import McpServerNotFound, McpServerUnavailable
from smg.mcp.types import McpRuntime, ToolOutcome
from smg.routing.accumulator import AccumulatedCall
from smg.routing.budgets import CallRecord, StopReason, parse_arguments
from smg.routing.tools import ToolPlan
from smg.spans import Tracer


class LoopObserver(Protocol):
    """Telemetry hooks of the tool loop (metrics, tracing); implementations must not raise."""

    def on_iteration(self, model: str, *, iteration: int) -> None:
        """A model call of the loop got a worker's 2xx answer (for a stream: its head); ``iteration`` is
        1-based. A call that never reached a worker (no worker serves the model, none is available) or
        that failed is not reported."""
        ...

    def on_tool_call(self, server: str, tool: str, *, status: str, duration: float) -> None:
        """One MCP call finished (or was answered by the gateway: invalid arguments, unknown tool)."""
        ...

    def on_stop(self, model: str, reason: StopReason, *, iterations: int) -> None:
        """The loop ended with ``reason`` after ``iterations`` model calls."""
        ...


class NullLoopObserver:
    """A LoopObserver that records nothing."""

    def on_iteration(self, model: str, *, iteration: int) -> None:
        pass

    def on_tool_call(self, server: str, tool: str, *, status: str, duration: float) -> None:
        pass

    def on_stop(self, model: str, reason: StopReason, *, iterations: int) -> None:
        pass


async def _traced_one(
    runtime: McpRuntime, plan: ToolPlan, call: AccumulatedCall, tracer: Tracer
) -> ToolOutcome:
    info = plan.tools.get(call.name)
    if info is None:
        return await _run_one(runtime, plan, call)
    with tracer.tool_call(info.server, info.name, call_id=call.id) as span:
        span.set("smg.tool.caller", "loop")  # the gateway's MCP endpoint sets "mcp_client"
        outcome = await _run_one(runtime, plan, call)
        span.set("smg.tool.status", outcome.status)
        if not outcome.ok:
            span.fail(outcome.status)
        return outcome


async def _run_one(runtime: McpRuntime, plan: ToolPlan, call: AccumulatedCall) -> ToolOutcome:
    info = plan.tools.get(call.name)
    if info is None:
        return ToolOutcome("", call.name, "error", f"error: no tool named {call.name!r} is available", 0.0)
    arguments = parse_arguments(call.arguments)
    if arguments is None:
        return ToolOutcome(
            info.server,
            info.name,
            "invalid_arguments",
            f"error: the arguments of {call.name} must be a JSON object; got {call.arguments[:200]!r}",
            0.0,
        )
    started = time.perf_counter()
    try:
        return await runtime.call_tool(info.server, info.name, arguments)
    except (McpServerNotFound, McpServerUnavailable) as exc:
        return ToolOutcome(
            info.server, info.name, "unavailable", f"error: {exc.message}", time.perf_counter() - started
        )


def tool_message(call: AccumulatedCall, outcome: ToolOutcome) -> dict[str, Any]:
    """The ``tool`` message answering ``call``; a failure's text says it failed."""
    text = outcome.text
    if not outcome.ok and not text.startswith("error"):
        text = f"error ({outcome.status}): {text}"
    return {"role": "tool", "tool_call_id": call.id, "content": text}


async def execute_round(
    runtime: McpRuntime,
    plan: ToolPlan,
    calls: Sequence[AccumulatedCall],
    *,
    iteration: int,
    observer: LoopObserver,
    tracer: Tracer,
) -> tuple[list[dict[str, Any]], list[CallRecord]]:
    """Run ``calls`` concurrently (each under a ``tools/call`` span); returns one tool message per call
    (in call order) and their records."""
    outcomes = await asyncio.gather(*(_traced_one(runtime, plan, call, tracer) for call in calls))
    messages: list[dict[str, Any]] = []
    records: list[CallRecord] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        observer.on_tool_call(outcome.server, outcome.tool, status=outcome.status, duration=outcome.duration)
        messages.append(tool_message(call, outcome))
        records.append(
            CallRecord(
                server=outcome.server,
                tool=outcome.tool,
                status=outcome.status,
                duration_ms=round(outcome.duration * 1000),
                iteration=iteration,
                attempts=outcome.attempts,
            )
        )
    return messages, records
