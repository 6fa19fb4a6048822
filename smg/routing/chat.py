"""ChatService: /v1/chat/completions, either pass-through or the MCP tool loop.

A request without MCP tools takes the pass-through path: the body goes to the worker exactly as received
(except that a stream whose client did not ask for usage asks for it, and that usage chunk is not
relayed: `smg.routing.metering`, ADR 0007) and a stream is relayed chunk by chunk; if it breaks after the
first byte, the client gets an OpenAI error event and ``data: [DONE]`` instead of a silent cut. TTFT,
TPOT, tokens and stage durations go to the `RouterObserver`. A request with MCP tools (its ``mcp``
entries, or servers exposed ``always``) goes to the `ToolLoop`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Protocol

from smg.errors import SmgError, UpstreamError, UpstreamProtocolError
from smg.protocol import SSE_DONE, ChatRequest, sse_error_event
from smg.routing.loop import ToolLoop
from smg.routing.metering import StreamMeter, Tokens, completion_tokens, stream_body
from smg.routing.tools import ToolPlan
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")


class RouterObserver(Protocol):
    def on_routed(self, model: str, *, streaming: bool, duration: float, error_code: str | None) -> None:
        """One routed request finished (for a stream: its last byte was relayed or it failed)."""
        ...

    def on_generation(
        self, model: str, *, ttft: float | None, tpot: float | None, tokens: Tokens | None
    ) -> None:
        """What one answered request generated: time to first token and per later token (streams),
        (input, output) tokens from the worker's ``usage``; None where unknown."""
        ...

    def on_stage(self, stage: str, duration: float) -> None:
        """One pipeline stage took ``duration`` seconds (``upstream``, ``tool_loop``)."""
        ...


class ToolCatalog(Protocol):
    """Which servers every request gets, and tool aliases (`smg.mcp.control.McpControl` provides it)."""

    def always(self) -> Collection[str]: ...
    def aliases(self) -> Mapping[str, Mapping[str, str]]: ...


class ChatService:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        observer: RouterObserver,
        tools: ToolLoop | None = None,
        catalog: ToolCatalog | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._observer = observer
        self._tools = tools
        self._catalog = catalog

    async def _plan(self, request: ChatRequest) -> ToolPlan | None:
        if self._tools is None or self._catalog is None:
            return None
        return await self._tools.plan(request, always=self._catalog.always(), aliases=self._catalog.aliases())

    async def complete(self, request: ChatRequest) -> Completed:
        """Non-streaming completion. Raises InvalidRequest, McpServerUnavailable, NoAvailableWorkers,
        ModelNotFound, UpstreamError."""
        started = time.perf_counter()
        error: str | None = None
        try:
            plan = await self._plan(request)
            stage_started = time.perf_counter()
            if plan is not None:
                assert self._tools is not None
                done = await self._tools.complete(request, plan)
                stage = "tool_loop"
            else:
                done = await self._dispatcher.complete(
                    request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
                )
                stage = "upstream"
            self._observer.on_stage(stage, time.perf_counter() - stage_started)
            if done.status == 200:
                tokens = completion_tokens(done.body)
                self._observer.on_generation(request.model, ttft=None, tpot=None, tokens=tokens)
            return done
        except SmgError as exc:
            error = exc.code
            raise
        finally:
            self._observer.on_routed(
                request.model, streaming=False, duration=time.perf_counter() - started, error_code=error
            )

    async def stream(self, request: ChatRequest) -> AsyncIterator[bytes]:
        """Open the upstream stream (errors before the first byte raise) and return the byte stream."""
        started = time.perf_counter()
        try:
            plan = await self._plan(request)
            if plan is not None:
                assert self._tools is not None
                return self._timed(await self._tools.stream(request, plan), request.model, started)
            body, injected = stream_body(request)
            stage_started = time.perf_counter()
            upstream = await self._dispatcher.open_stream(
                request.model, body, headers=request.headers, affinity_key=request.affinity_key
            )
            self._observer.on_stage("upstream", time.perf_counter() - stage_started)
        except SmgError as exc:
            self._observer.on_routed(
                request.model, streaming=True, duration=time.perf_counter() - started, error_code=exc.code
            )
            raise
        return self._relay(upstream, request.model, started, StreamMeter(strip_usage=injected))

    async def _timed(self, chunks: AsyncIterator[bytes], model: str, started: float) -> AsyncIterator[bytes]:
        completed = False
        try:
            async for chunk in chunks:
                yield chunk
            completed = True
        finally:
            error = None if completed else "client_disconnected"
            self._observer.on_stage("tool_loop", time.perf_counter() - started)
            self._observer.on_routed(
                model, streaming=True, duration=time.perf_counter() - started, error_code=error
            )
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _relay(
        self, upstream: UpstreamStream, model: str, started: float, meter: StreamMeter
    ) -> AsyncIterator[bytes]:
        failure: UpstreamError | None = None
        completed = False
        tail = b""
        try:
            async for chunk in upstream.chunks():
                tail = (tail + chunk)[-64:]
                out = meter.feed(chunk, time.perf_counter())
                if out:
                    yield out
            rest = meter.flush()
            if rest:
                yield rest
            if b"[DONE]" not in tail:
                raise UpstreamProtocolError(
                    f"worker {upstream.worker.url} ended the stream without [DONE]",
                    worker=upstream.worker.url,
                )
            completed = True
        except UpstreamError as exc:
            failure = exc
            log.warning("stream from %s broke after the first byte: %s", upstream.worker.url, exc.message)
            separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
            yield meter.flush() + separator + sse_error_event(exc) + SSE_DONE
            completed = True
        finally:
            error = failure.code if failure else (None if completed else "client_disconnected")
            if meter.first_token is not None or meter.tokens is not None:
                ttft = None if meter.first_token is None else meter.first_token - started
                self._observer.on_generation(model, ttft=ttft, tpot=meter.tpot(), tokens=meter.tokens)
            self._observer.on_routed(
                model, streaming=True, duration=time.perf_counter() - started, error_code=error
            )
            await upstream.aclose(failure=failure, completed=completed)
