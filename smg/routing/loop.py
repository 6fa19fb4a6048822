"""The MCP tool loop of /v1/chat/completions (DESIGN 4.2; the streaming variant is in `stream_loop`).

Call the model; when its reply asks only for gateway-owned calls (MCP tools, or names nobody declared,
which get an error tool message), run them concurrently, append the assistant message and one ``tool``
message per call, and call the model again, until a reply asks for none. A reply that also asks for a
client function is returned with the client's calls only (nothing of that turn runs; ``mixed_tool_calls``).
A budget (`LoopBudgets`) ends the loop with a final answer saying why (``finish_reason`` ``stop``).

The response is the last reply with the first reply's ``id`` and ``created``, ``usage`` summed over every
model call, and an ``smg`` extension object: ``{"tool_calls": [...], "iterations", "stop_reason"}``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any

import orjson

from smg.errors import UpstreamProtocolError
from smg.mcp.types import McpRuntime
from smg.protocol import ChatRequest
from smg.routing.budgets import LoopBudgets, LoopLedger, stop_notice
from smg.routing.execution import (
    LoopObserver,
    NullLoopObserver,
    calls_of_message,
    execute_round,
    round_decision,
    with_ids,
)
from smg.routing.metering import Generation
from smg.routing.spans import NULL_SPAN, LoopTracer, NullLoopTracer, TraceSpan, annotate_round, current
from smg.routing.stream_loop import StreamRun
from smg.routing.tools import ToolPlan, resolve_tools
from smg.workers.dispatch import Completed, Dispatcher


def _reply_of(done: Completed) -> dict[str, Any]:
    try:
        reply = orjson.loads(done.body)
    except orjson.JSONDecodeError:
        reply = None
    choices = reply.get("choices") if isinstance(reply, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(reply, dict) or not isinstance(message, dict):
        raise UpstreamProtocolError(
            f"worker {done.worker} sent a chat completion without a message", worker=done.worker
        )
    return reply


class ToolLoop:
    """Runs requests that have MCP tools. One instance serves every request; state lives per call."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        runtime: McpRuntime,
        *,
        budgets: LoopBudgets | None = None,
        observer: LoopObserver | None = None,
        tracer: LoopTracer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tracer: LoopTracer = tracer or NullLoopTracer()
        self._dispatcher = dispatcher
        self._runtime = runtime
        self._budgets = budgets or LoopBudgets()
        self._observer = observer or NullLoopObserver()
        self._clock = clock

    async def plan(
        self,
        request: ChatRequest,
        *,
        always: Collection[str] = (),
        aliases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> ToolPlan | None:
        """The MCP tools of ``request`` (see `resolve_tools`), None for the pass-through path.
        Raises InvalidRequest, McpServerUnavailable."""
        return await resolve_tools(request.body, self._runtime, always=always, aliases=aliases)

    async def complete(
        self, request: ChatRequest, plan: ToolPlan, *, report: Generation | None = None
    ) -> Completed:
        """Run the loop to a final answer (HTTP 200, JSON); ``report`` gets its iterations and stop reason.
        Raises what `Dispatcher.complete` raises (a worker's error status as UpstreamStatusError) and
        UpstreamProtocolError for an unusable reply; tool failures never raise."""
        ledger = LoopLedger(self._budgets, self._clock)
        report = report if report is not None else Generation()
        body = {k: v for k, v in plan.body.items() if k != "stream_options"} | {"stream": False}
        messages = list(body["messages"])
        first: dict[str, Any] | None = None
        while True:
            ledger.iterations += 1
            report.iterations = ledger.iterations
            with current(self._tracer.start_iteration(request.model, ledger.iterations)) as span:
                done = await self._dispatcher.complete(
                    request.model,
                    orjson.dumps(body | {"messages": messages}),
                    headers=request.headers,
                    affinity_key=request.affinity_key,
                )
                self._observer.on_iteration(request.model, iteration=ledger.iterations)
                reply = _reply_of(done)
                first = first or reply
                ledger.add_usage(reply.get("usage"))
                annotate_round(span, usage=reply.get("usage"), response_model=reply.get("model"))
                choice = reply["choices"][0]
                message = choice["message"]
                calls = with_ids(calls_of_message(message), iteration=ledger.iterations)
                reason, client = round_decision(calls, plan, ledger)
                if reason == "mixed_tool_calls":
                    message["tool_calls"] = [message["tool_calls"][c.index] for c in client]
                if reason is not None:
                    break
                tool_messages, records = await execute_round(
                    self._runtime,
                    plan,
                    calls,
                    iteration=ledger.iterations,
                    observer=self._observer,
                    tracer=self._tracer,
                )
                ledger.records += records
                assistant = {
                    "role": "assistant",
                    "content": message.get("content"),
                    "tool_calls": [c.as_message_call() for c in calls],
                }
                messages += [assistant, *tool_messages]
        if reason not in ("completed", "mixed_tool_calls"):
            notice = stop_notice(reason, ledger)
            text = message.get("content")
            choice["message"] = {"role": "assistant", "content": f"{text}\n\n{notice}" if text else notice}
            choice["finish_reason"] = "stop"
        self._observer.on_stop(request.model, reason, iterations=ledger.iterations)
        report.stop_reason = reason
        reply["id"] = first.get("id", reply.get("id"))
        reply["created"] = first.get("created", reply.get("created"))
        if ledger.usage is not None:
            reply["usage"] = ledger.usage
        reply["smg"] = ledger.extension(reason)
        return Completed(200, "application/json", orjson.dumps(reply), done.worker)

    async def stream(
        self,
        request: ChatRequest,
        plan: ToolPlan,
        *,
        report: Generation | None = None,
        route: TraceSpan = NULL_SPAN,
    ) -> AsyncIterator[bytes]:
        """Open the first model stream (errors before the first byte raise, as `Dispatcher.open_stream`)
        and return the loop's SSE byte stream (see `stream_loop`); later failures end it with an error
        event and ``data: [DONE]``. ``report`` is filled in while the stream is read; each iteration's
        span is a child of ``route``."""
        run = StreamRun(
            self._dispatcher,
            self._runtime,
            request,
            plan,
            ledger=LoopLedger(self._budgets, self._clock),
            observer=self._observer,
            tracer=self._tracer,
            report=report if report is not None else Generation(),
            route=route,
        )
        return await run.open()
