"""ChatService: the pass-through path of /v1/chat/completions (no MCP tools involved).

The body goes to the worker exactly as received. A stream is relayed chunk by chunk; if it breaks after
the first byte, the client gets an OpenAI error event and ``data: [DONE]`` instead of a silent cut.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from smg.errors import UpstreamError, UpstreamProtocolError
from smg.protocol import SSE_DONE, ChatRequest, sse_error_event
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")


class ChatService:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def complete(self, request: ChatRequest) -> Completed:
        """Non-streaming completion. Raises NoAvailableWorkers, ModelNotFound, UpstreamError."""
        return await self._dispatcher.complete(
            request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[bytes]:
        """Open the upstream stream (errors before the first byte raise) and return the relay."""
        upstream = await self._dispatcher.open_stream(
            request.model, request.raw, headers=request.headers, affinity_key=request.affinity_key
        )
        return _relay(upstream)


async def _relay(upstream: UpstreamStream) -> AsyncIterator[bytes]:
    failure: UpstreamError | None = None
    completed = False
    tail = b""
    try:
        async for chunk in upstream.chunks():
            tail = (tail + chunk)[-64:]
            yield chunk
        if b"[DONE]" not in tail:
            raise UpstreamProtocolError(
                f"worker {upstream.worker.url} ended the stream without [DONE]", worker=upstream.worker.url
            )
        completed = True
    except UpstreamError as exc:
        failure = exc
        log.warning("stream from %s broke after the first byte: %s", upstream.worker.url, exc.message)
        separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
        yield separator + sse_error_event(exc) + SSE_DONE
        completed = True
    finally:
        await upstream.aclose(failure=failure, completed=completed)
