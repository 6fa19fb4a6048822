"""The MCP tool loop of /v1/chat/completions (DESIGN 4.2; the streaming variant is in `stream_loop`).

`ChatService` hands it a request and its `ToolPlan`. Each round reads top to bottom: call the model
(through the `Dispatcher`), read the reply's tool calls (`accumulator`), let the ledger decide whether
the loop goes on (`budgets`), run the round (`execution`).

When a reply asks only for gateway-owned calls (MCP tools, or names nobody declared, which get an error
tool message), run them concurrently, append the assistant message and one ``tool`` message per call,
and call the model again, until a reply asks for none. A reply that also asks for a
client function is returned with the client's calls only (nothing of that turn runs; ``mixed_tool_calls``).
A budget (`LoopBudgets`) ends the loop with a final answer saying why (``finish_reason`` ``stop``).

The response is the last reply with the first reply's ``id`` and ``created``, ``usage`` summed over every
model call, and an ``smg`` extension object: ``{"tool_calls": [...], "iterations", "stop_reason"}``.
`ToolLoop.run` is the loop itself and returns the rounds it ran (the Responses API turns them into output
items, ADR 0013); `ToolLoop.complete` formats its result as chat's answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from smg.errors import UpstreamProtocolError
from smg.mcp.types import McpRuntime
from smg.protocol import ChatRequest
from smg.routing.accumulator import AccumulatedCall, calls_of_message, with_ids
from smg.routing.budgets import CallRecord, LoopBudgets, LoopLedger, StopReason, stop_notice
from smg.routing.execution import LoopObserver, NullLoopObserver, execute_round
from smg.routing.metering import Generation, annotate_round
from smg.routing.recent_loops import RecentLoops
from smg.routing.stream_loop import StreamRun
from smg.routing.stream_writer import LoopWriter
from smg.routing.tools import ToolPlan
from smg.spans import NULL_SPAN, Tracer, TraceSpan, current
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


@dataclass(frozen=True)
class LoopRound:
    """One executed round: the assistant message (with its calls), the calls, and per call (in call
    order) its ``tool`` message and its record."""

    assistant: dict[str, Any]
    calls: list[AccumulatedCall]
    tool_messages: list[dict[str, Any]]
    records: list[CallRecord]


@dataclass(frozen=True)
class LoopResult:
    """What `ToolLoop.run` ends with: the last reply, why the loop stopped, its ledger, the rounds it
    executed, and the worker of the last reply."""

    reply: dict[str, Any]
    reason: StopReason
    ledger: LoopLedger
    rounds: list[LoopRound]
    worker: str


class ToolLoop:
    """Runs requests that have MCP tools. One instance serves every request; state lives per call.
    ``runtime`` is where the tools are listed (`resolve_tools`) and called; ``clock`` drives the
    deadline budget; ``recent``: the ring of recent loops (`recent_loops`), None to keep none."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        runtime: McpRuntime,
        *,
        tracer: Tracer,
        budgets: LoopBudgets | None = None,
        observer: LoopObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        recent: RecentLoops | None = None,
    ) -> None:
        self.runtime = runtime
        self.recent = recent
        self._dispatcher = dispatcher
        self._tracer = tracer
        self._budgets = budgets or LoopBudgets()
        self._observer = observer or NullLoopObserver()
        self._clock = clock

    def keep_recent(
        self,
        report: Generation,
        route: TraceSpan,
        *,
        endpoint: str,
        headers: dict[str, str],
        caller: str | None,
    ) -> None:
        """A loop is planned for the route ``route`` (current now) whose generation is ``report``: give
        it an entry of the recent loops (`RecentLoops.start`)."""
        if self.recent is not None:
            self.recent.start(
                report,
                endpoint=endpoint,
                headers=headers,
                caller=caller,
                tracer=self._tracer,
                traced=route.recording,
            )

    async def complete(
        self, request: ChatRequest, plan: ToolPlan, *, report: Generation | None = None
    ) -> Completed:
        """Run the loop to a final answer (HTTP 200, JSON); ``report`` gets its iterations and stop reason.
        Raises what `run` raises."""
        result = await self.run(request, plan, report=report)
        reply, reason, ledger = result.reply, result.reason, result.ledger
        choice = reply["choices"][0]
        if reason not in ("completed", "mixed_tool_calls"):
            notice = stop_notice(reason, ledger)
            text = choice["message"].get("content")
            choice["message"] = {"role": "assistant", "content": f"{text}\n\n{notice}" if text else notice}
            choice["finish_reason"] = "stop"
        reply["smg"] = ledger.extension(reason)
        return Completed(200, "application/json", orjson.dumps(reply), result.worker)

    async def run(
        self,
        request: ChatRequest,
        plan: ToolPlan,
        *,
        report: Generation | None = None,
        budgets: LoopBudgets | None = None,
    ) -> LoopResult:
        """Run the loop until a reply ends it: the rounds run, the last reply (with the first reply's
        ``id`` and ``created`` and the summed ``usage``; a mixed reply keeps the client's calls only), the
        stop reason. ``budgets`` replaces the loop's own for this request. Raises what
        `Dispatcher.complete` raises (a worker's error status as UpstreamStatusError) and
        UpstreamProtocolError for an unusable reply; tool failures never raise."""
        ledger = LoopLedger(budgets or self._budgets, self._clock)
        report = report if report is not None else Generation()
        if report.loop is not None:
            report.loop.calls = ledger.records
        body = {k: v for k, v in plan.body.items() if k != "stream_options"} | {"stream": False}
        messages = list(body["messages"])
        rounds: list[LoopRound] = []
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
                message = reply["choices"][0]["message"]
                calls = with_ids(calls_of_message(message), iteration=ledger.iterations)
                reason, client = ledger.decide(calls, plan)
                if reason == "mixed_tool_calls":
                    message["tool_calls"] = [message["tool_calls"][c.index] for c in client]
                if reason is not None:
                    break
                tool_messages, records = await execute_round(
                    self.runtime,
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
                rounds.append(LoopRound(assistant, calls, tool_messages, records))
        self._observer.on_stop(request.model, reason, iterations=ledger.iterations)
        report.stop_reason = reason
        reply["id"] = first.get("id", reply.get("id"))
        reply["created"] = first.get("created", reply.get("created"))
        if ledger.usage is not None:
            reply["usage"] = ledger.usage
        return LoopResult(reply, reason, ledger, rounds, done.worker)

    async def open_stream(
        self,
        request: ChatRequest,
        plan: ToolPlan,
        *,
        report: Generation | None = None,
        route: TraceSpan = NULL_SPAN,
        clock: Callable[[], float] = time.perf_counter,
        budgets: LoopBudgets | None = None,
        writer: LoopWriter | None = None,
    ) -> StreamRun:
        """Open the first model stream (errors before the first byte raise, as `Dispatcher.open_stream`)
        and return the run, whose `StreamRun.events` is the loop's SSE byte stream (see `stream_loop`);
        later failures end it with an error event and ``data: [DONE]``. ``report`` is filled in while
        the stream is read (token times from ``clock``); each iteration's span is a child of ``route``.
        ``budgets`` replaces the loop's own for this request; ``writer`` writes the client's bytes
        (default: the chat stream)."""
        run = StreamRun(
            self._dispatcher,
            self.runtime,
            request,
            plan,
            ledger=LoopLedger(budgets or self._budgets, self._clock),
            observer=self._observer,
            tracer=self._tracer,
            report=report if report is not None else Generation(),
            route=route,
            clock=clock,
            writer=writer,
        )
        await run.open()
        return run
