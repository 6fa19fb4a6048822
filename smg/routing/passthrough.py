"""PassThroughService: ``/v1/completions`` and ``/v1/embeddings``, passed through to a worker serving the
request's model, as chat's pass-through path (`smg.routing.chat`) passes chat requests.

The body goes to the worker exactly as received (except that a completions stream whose client did not
ask for usage asks for it, and that usage chunk is not relayed: ADR 0007), on the worker selected by the
same policy, with the same retries before the first byte and the same breakers. A stream that breaks after
its first byte ends with an OpenAI error event and ``data: [DONE]`` (`relay`). One service serves one
route: its worker path and its ``endpoint`` label (the observer's) are fixed when it is built, so a
request does no path or label work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from smg.errors import UpstreamError, UpstreamProtocolError
from smg.protocol import SSE_DONE, PassThroughRequest, sse_error_event
from smg.routing.metering import Generation, StreamMeter, read_completion, stream_body
from smg.routing.recorder import RouteRecorder, RouterObserver, RouteStream
from smg.spans import Tracer
from smg.workers.dispatch import Completed, Dispatcher, UpstreamStream

log = logging.getLogger("smg.routing")

COMPLETIONS_PATH = "/v1/completions"
EMBEDDINGS_PATH = "/v1/embeddings"

UsageReader = Callable[[bytes, Generation], Generation]
"""Fills a `Generation` from a 200 answer's body (its usage, id and model, as far as it has them)."""


def read_embedding(body: bytes, into: Generation) -> Generation:
    """``into`` with the usage and ``model`` of an embeddings body: input tokens are its
    ``usage.prompt_tokens``, output tokens 0 (an embedding generates none)."""
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return into
    if isinstance(doc, dict):
        usage = doc.get("usage")
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        into.tokens = (prompt, 0) if type(prompt) is int else None
        model = doc.get("model")
        into.response_model = model if isinstance(model, str) and model else None
    return into


class PassThroughService:
    """Routes one pass-through endpoint's requests to the workers' ``path``. ``usage`` reads a whole
    answer's usage (a completion's by default); ``operation`` is the route span's
    ``gen_ai.operation.name``; ``text_tokens``: its stream chunks carry tokens as ``text`` (`StreamMeter`)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        path: str,
        observer: RouterObserver,
        tracer: Tracer,
        operation: str,
        usage: UsageReader = read_completion,
        text_tokens: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._dispatcher = dispatcher
        self._path = path
        self._policy = dispatcher.policy_name
        self._observer = observer
        self._tracer = tracer
        self._operation = operation
        self._usage = usage
        self._text_tokens = text_tokens
        self._clock = clock

    def _route(self, request: PassThroughRequest, *, streaming: bool) -> RouteRecorder:
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=streaming,
            policy=self._policy,
            clock=self._clock,
        )
        if route.span.recording:
            route.span.set("gen_ai.operation.name", self._operation)
        return route

    async def complete(self, request: PassThroughRequest) -> Completed:
        """The worker's whole answer. Raises NoAvailableWorkers, ModelNotFound, UpstreamError."""
        route = self._route(request, streaming=False)
        with route:
            route.stage("upstream")
            done = await self._dispatcher.complete(
                request.model,
                request.raw,
                headers=request.headers,
                affinity_key=request.affinity_key,
                path=self._path,
            )
            route.end_stage()
            route.generation.worker = done.worker
            if done.status == 200:
                self._usage(done.body, route.generation)
        route.finish()
        return done

    async def stream(self, request: PassThroughRequest) -> RouteStream:
        """Open the upstream stream (errors before the first byte raise) and return the client's bytes."""
        route = self._route(request, streaming=True)
        with route:
            body, injected = stream_body(request)
            route.stage("upstream")  # until the worker's head
            upstream = await self._dispatcher.open_stream(
                request.model,
                body,
                headers=request.headers,
                affinity_key=request.affinity_key,
                path=self._path,
            )
            route.end_stage()
        meter = StreamMeter(strip_usage=injected, text_tokens=self._text_tokens)
        return RouteStream(relay(upstream, route, meter), route, upstream.release)


def passthrough_services(
    dispatcher: Dispatcher, *, observer: Callable[[str], RouterObserver], tracer: Tracer
) -> tuple[PassThroughService, PassThroughService]:
    """The completions and embeddings services; ``observer(endpoint)`` makes each one's observer, for
    its ``endpoint`` label: ``completions`` or ``embeddings`` (SMG's values)."""
    completions = PassThroughService(
        dispatcher,
        path=COMPLETIONS_PATH,
        observer=observer("completions"),
        tracer=tracer,
        operation="text_completion",
    )
    embeddings = PassThroughService(
        dispatcher,
        path=EMBEDDINGS_PATH,
        observer=observer("embeddings"),
        tracer=tracer,
        operation="embeddings",
        usage=read_embedding,
    )
    return completions, embeddings


async def relay(
    upstream: UpstreamStream, route: RouteRecorder, meter: StreamMeter
) -> AsyncGenerator[bytes, None]:
    """The worker's stream as the client gets it; a break after the first byte becomes an error event
    and ``data: [DONE]``. The route ends with it."""
    failure: UpstreamError | None = None
    completed = False
    tail = b""
    clock = route.clock
    try:
        async for chunk in upstream.chunks():
            # Not (tail + chunk)[-64:]: that copies every chunk, a large one too.
            tail = chunk[-64:] if len(chunk) >= 64 else (tail + chunk)[-64:]
            out = meter.feed(chunk, clock())
            del chunk  # while the client is slow to take ``out``, hold only ``out``
            if out:
                yield out
        rest = meter.flush()
        if rest:
            yield rest
        if b"[DONE]" not in tail:
            raise UpstreamProtocolError(
                f"worker {upstream.worker.url} ended the stream without [DONE]", worker=upstream.worker.url
            )
        completed = True
    except UpstreamError as exc:
        failure = exc
        route.failed(exc)
        log.warning("stream from %s broke after the first byte: %s", upstream.worker.url, exc.message)
        separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
        yield meter.flush() + separator + sse_error_event(exc) + SSE_DONE
        completed = True
    except BaseException as exc:
        route.failed(exc)
        raise
    finally:
        meter.report(route.generation, worker=upstream.worker.url)
        route.finish()
        await upstream.aclose(failure=failure, completed=completed)
