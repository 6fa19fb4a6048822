"""The streaming tool loop (DESIGN 4.3): several upstream streams, one well-formed client stream.

What the client sees: one role chunk; the content deltas of every round as they arrive; never the
tool-call deltas of gateway-owned calls (they are accumulated and executed); SSE comment lines
``: smg tool_call server=S tool=T status=ok duration_ms=3`` as each round's calls finish (standard
parsers ignore comments); one final chunk with the ``finish_reason`` (``stop`` when a budget ended the
loop, after a content delta saying why); a ``"choices": []`` usage chunk (usage summed over rounds) only
when the client set ``stream_options.include_usage``; ``data: [DONE]``. Every chunk carries the first
upstream chunk's id, created and model. The last chunk before ``[DONE]`` carries the ``smg`` extension.

Client-owned tool calls are buffered like the others and sent whole, in one chunk, at the end of their
round (re-indexed from 0), with ``finish_reason`` ``tool_calls``; in a mixed round the MCP calls are dropped
and nothing runs. Upstream usage is always requested and never relayed. A failure after the stream
started (a broken upstream, a worker error status or no worker for a later round) ends the client stream
with an OpenAI error event and ``data: [DONE]``.

What the client reads is written by a `LoopWriter` (`stream_writer`): the chat format above is
`ChatWriter`, the default; the Responses API passes its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import orjson

from smg.errors import SmgError, UpstreamError, UpstreamProtocolError
from smg.mcp.types import McpRuntime
from smg.protocol import ChatRequest
from smg.routing.accumulator import SseDecoder, SseEventTooLarge, ToolCallAccumulator, with_ids
from smg.routing.budgets import LoopLedger
from smg.routing.execution import LoopObserver, execute_round
from smg.routing.metering import Generation, annotate_round, per_token, usage_tokens
from smg.routing.stream_chunks import upstream_stream_body
from smg.routing.stream_writer import ChatWriter, LoopWriter
from smg.routing.tools import ToolPlan
from smg.spans import NULL_SPAN, Tracer, TraceSpan
from smg.workers.dispatch import Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")


@dataclass
class _Round:
    calls: ToolCallAccumulator = field(default_factory=ToolCallAccumulator)
    content: list[str] = field(default_factory=list)  # the deltas, joined once (+= is quadratic)
    finish_reason: str | None = None
    usage: Any = None
    model: Any = None
    done: bool = False
    first_token: float | None = None
    last_token: float | None = None


class StreamRun:
    """One streaming loop: `open` opens the first round; `events` is the client stream, which owns every
    upstream stream it reads (each closed exactly once); `release` closes what `open` holds when `events`
    never started. ``report`` is filled in as the stream is read: the time the first token left for the
    client (read from ``clock``), usage summed over rounds, TPOT of the last round, the response id and
    model, iterations and stop reason. Each iteration has a span, a child of ``route``, that is the
    parent of its worker attempt and its tool calls. ``writer`` writes what the client reads (default:
    the chat stream, `ChatWriter`)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        runtime: McpRuntime,
        request: ChatRequest,
        plan: ToolPlan,
        *,
        ledger: LoopLedger,
        observer: LoopObserver,
        tracer: Tracer,
        report: Generation,
        route: TraceSpan,
        clock: Callable[[], float],
        writer: LoopWriter | None = None,
    ) -> None:
        self._tracer = tracer
        self._report = report
        self._route = route
        self._clock = clock
        self._span: TraceSpan = NULL_SPAN
        self._first: UpstreamStream | None = None
        self._dispatcher = dispatcher
        self._runtime = runtime
        self._request = request
        self._plan = plan
        self._ledger = ledger
        if report.loop is not None:
            report.loop.calls = ledger.records
        self._observer = observer
        self._body = upstream_stream_body(plan.body)
        self._messages: list[dict[str, Any]] = list(plan.body["messages"])
        options = plan.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self._out = writer or ChatWriter(request.model, report, clock, include_usage=include_usage)

    async def open(self) -> None:
        """Open the first round's stream. Raises what `Dispatcher.open_stream` raises."""
        self._ledger.iterations = 1
        try:
            self._first = await self._open_round()
        except SmgError as exc:
            self._span.fail(exc.code)
            self._span.end()
            raise
        except BaseException:
            self._span.end()
            raise

    async def release(self) -> None:
        """Close the first round's stream (no verdict on its worker) and end its span, unless `events`
        started and so owns them."""
        first, self._first = self._first, None
        if first is not None:
            self._span.end()
            await first.release()

    async def _open_round(self) -> UpstreamStream:
        """Start the span of iteration ``ledger.iterations`` and open its model stream under it."""
        with self._route.activate():
            self._span = self._tracer.start_iteration(self._request.model, self._ledger.iterations)
        self._report.iterations = self._ledger.iterations
        with self._span.activate():
            upstream = await self._dispatcher.open_stream(
                self._request.model,
                orjson.dumps(self._body | {"messages": self._messages}),
                headers=self._request.headers,
                affinity_key=self._request.affinity_key,
            )
        self._observer.on_iteration(self._request.model, iteration=self._ledger.iterations)
        return upstream

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The client's SSE bytes, from the round `open` opened."""
        upstream, self._first = self._first, None
        assert upstream is not None, "events() of a run that is not open"
        try:
            async with aclosing(self._rounds(upstream)) as rounds:
                async for out in rounds:
                    yield out
        except SmgError as exc:
            log.warning("tool loop stream failed after the first byte: %s", exc.message)
            self._report.error = exc.code
            self._span.fail(exc.code)
            yield self._out.failed(exc)
        finally:
            self._report.tokens = usage_tokens(self._ledger.usage)
            self._span.end()

    async def _rounds(self, upstream: UpstreamStream) -> AsyncGenerator[bytes, None]:
        ledger, plan, report = self._ledger, self._plan, self._report
        while True:
            current = _Round()
            report.worker = upstream.worker.url
            async with aclosing(self._relay(upstream, current)) as relay:
                async for out in relay:
                    yield out
            ledger.add_usage(current.usage)
            annotate_round(self._span, usage=current.usage, response_model=current.model)
            calls = with_ids(current.calls.calls(), iteration=ledger.iterations)
            reason, client = ledger.decide(calls, plan)
            if reason is not None:
                break
            yield self._out.executing(ledger.iterations, calls)
            with self._span.activate():
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
                "content": "".join(current.content) or None,
                "tool_calls": [c.as_message_call() for c in calls],
            }
            yield self._out.executed(assistant, calls, tool_messages, records)
            self._messages += [assistant, *tool_messages]
            self._span.end()
            ledger.iterations += 1
            upstream = await self._open_round()
        output = usage_tokens(current.usage)
        report.tpot = per_token(
            current.first_token, current.last_token, None if output is None else output[1]
        )
        report.stop_reason = reason
        self._observer.on_stop(self._request.model, reason, iterations=ledger.iterations)
        yield self._out.finished(reason, client, current.finish_reason, ledger)

    async def _relay(self, upstream: UpstreamStream, current: _Round) -> AsyncGenerator[bytes, None]:
        """Read one upstream stream to its ``[DONE]``, yielding what the client sees of it."""
        decoder = SseDecoder()
        failure: UpstreamError | None = None
        completed = False
        try:
            async for raw in upstream.chunks():
                for data in _decoded(decoder, raw, upstream.worker.url):
                    if data.strip() == "[DONE]":
                        current.done = True
                        continue
                    out = self._on_chunk(data, current, upstream.worker.url)
                    if out:
                        yield out
            if not current.done:
                raise UpstreamProtocolError(
                    f"worker {upstream.worker.url} ended the stream without [DONE]",
                    worker=upstream.worker.url,
                )
            completed = True
        except UpstreamError as exc:
            failure = exc
            raise
        finally:
            await upstream.aclose(failure=failure, completed=completed)

    def _on_chunk(self, data: str, current: _Round, worker: str) -> bytes:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            message = f"worker {worker} sent a chunk that is not JSON"
            raise UpstreamProtocolError(message, worker=worker) from None
        if not isinstance(chunk, dict) or "error" in chunk:
            raise UpstreamProtocolError(f"worker {worker} sent an error mid-stream", worker=worker)
        self._out.seen(chunk)
        if current.model is None:
            current.model = chunk.get("model")
        if isinstance(chunk.get("usage"), dict):
            current.usage = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return b""
        choice = choices[0]
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        out = self._out.started()
        content = delta.get("content")
        tool_calls = delta.get("tool_calls")
        if content or tool_calls:
            current.last_token = self._clock()
            if current.first_token is None:
                current.first_token = current.last_token
        if isinstance(content, str) and content:
            current.content.append(content)
            out += self._out.content(content)
        if isinstance(tool_calls, list):
            current.calls.feed(tool_calls)
        if choice.get("finish_reason"):
            current.finish_reason = str(choice["finish_reason"])
        return out


def _decoded(decoder: SseDecoder, raw: bytes, worker: str) -> list[str]:
    """The payloads ``raw`` completes. Raises UpstreamProtocolError for an event past the decoder's bound
    (a worker that never ends its event must not grow the gateway's memory)."""
    try:
        return decoder.feed(raw)
    except SseEventTooLarge as exc:
        raise UpstreamProtocolError(f"worker {worker} sent a broken stream: {exc}", worker=worker) from None
