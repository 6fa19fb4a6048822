"""ChatService: the pass-through path of /v1/chat/completions (no MCP tools involved).

The body goes to the worker exactly as received. A stream is relayed chunk by chunk; if it breaks after
the first byte, the client gets an OpenAI error event and ``data: [DONE]`` instead of a silent cut.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

from smg.errors import SmgError, UpstreamError, UpstreamProtocolError
from smg.protocol import SSE_DONE, ChatRequest, sse_error_event
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")


class RouterObserver(Protocol):
    def on_routed(self, model: str, *, streaming: bool, duration: float, error_code: str | None) -> None:
        """One routed request finished (for a stream: its last byte was relayed or it failed)."""
        ...


class ChatService:
    def __init__(self, dispatcher: Dispatcher, *, observer: RouterObserver) -> None:
        self._dispatcher = dispatcher
        self._observer = observer

    async def complete(self, request: ChatRequest) -> Completed:
        """Non-streaming completion. Raises NoAvailableWorkers, ModelNotFound, UpstreamError."""
        started = time.perf_counter()
        error: str | None = None
        try:
            return await self._dispatcher.complete(
                request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
            )
        except SmgError as exc:
            error = exc.code
            raise
        finally:
            self._observer.on_routed(
                request.model, streaming=False, duration=time.perf_counter() - started, error_code=error
            )

    async def stream(self, request: ChatRequest) -> AsyncIterator[bytes]:
        """Open the upstream stream (errors before the first byte raise) and return the relay."""
        started = time.perf_counter()
        try:
            upstream = await self._dispatcher.open_stream(
                request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
            )
        except SmgError as exc:
            self._observer.on_routed(
                request.model, streaming=True, duration=time.perf_counter() - started, error_code=exc.code
            )
            raise
        return self._relay(upstream, request.model, started)

    async def _relay(self, upstream: UpstreamStream, model: str, started: float) -> AsyncIterator[bytes]:
        failure: UpstreamError | None = None
        completed = False
        tail = b""
        try:
            async for chunk in upstream.chunks():
                tail = (tail + chunk)[-64:]
                yield chunk
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
            yield separator + sse_error_event(exc) + SSE_DONE
            completed = True
        finally:
            error = failure.code if failure else (None if completed else "client_disconnected")
            self._observer.on_routed(
                model, streaming=True, duration=time.perf_counter() - started, error_code=error
            )
            await upstream.aclose(failure=failure, completed=completed)
