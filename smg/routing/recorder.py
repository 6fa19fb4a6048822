"""One recorder per routed chat request: whatever ends the route, its outcome is recorded exactly once.

`ChatService` makes a `RouteRecorder` when a request reaches routing, and every way out of the route goes
through it: an answer, an `SmgError`, an unexpected exception (a bug), a cancelled task, a stream read to
its end, broken, or closed by a client that left, before its first byte included (`RouteStream`). On
`finish` it reports, once: what was generated (TTFT, TPOT, tokens: `RouterObserver.on_generation`), a
stage still running, the route span's attributes, failure and end, and the request itself with its
error code (`RouterObserver.on_routed`). The error code of an exception is `error_code`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol

from smg.errors import SmgError
from smg.routing.metering import Generation, Tokens, read_completion
from smg.spans import Tracer, TraceSpan
from smg.workers.dispatch import Completed

CLIENT_DISCONNECTED = "client_disconnected"
INTERNAL_ERROR = SmgError.code


class RouterObserver(Protocol):
    """Telemetry hooks of routing (`smg.observability.observers.RouterMetrics`); must not raise."""

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


def error_code(exc: BaseException) -> str:
    """The error a route ended with: an `SmgError`'s code; ``client_disconnected`` when the client went
    away (the route's task was cancelled, or its stream was closed before its end); ``internal_error``
    for anything else (a bug, answered 500 by the edge)."""
    if isinstance(exc, SmgError):
        return exc.code
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return CLIENT_DISCONNECTED
    return INTERNAL_ERROR


class RouteRecorder:
    """The outcome of one routed request. ``generation`` is filled in by whoever produces the answer;
    ``clock`` is the one all of the route's times are read from (``generation.first_token`` included).

    Use: ``with recorder:`` around the route's opening (until its answer, or a stream's head): the route
    span is current inside, and an exception leaving the block finishes the route with that exception's
    error (a stage it interrupted is not recorded). Then `finish` (a stream: its relay's end, or
    `RouteStream.aclose`); `finish` records once, later calls do nothing.
    """

    __slots__ = (
        "_active",
        "_model",
        "_observer",
        "_stage",
        "_stage_started",
        "_streaming",
        "clock",
        "finished",
        "generation",
        "span",
        "started",
    )

    def __init__(
        self,
        observer: RouterObserver,
        tracer: Tracer,
        model: str,
        *,
        streaming: bool,
        policy: str,
        clock: Callable[[], float],
    ) -> None:
        self.clock = clock
        self.started = clock()
        self.span: TraceSpan = tracer.start_route(model, streaming=streaming, policy=policy)
        self.generation = Generation()
        self.finished = False
        self._observer = observer
        self._model = model
        self._streaming = streaming
        self._stage: str | None = None
        self._stage_started = 0.0
        self._active: AbstractContextManager[object] | None = None

    def __enter__(self) -> RouteRecorder:
        self._active = self.span.activate()
        self._active.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._active is not None
        self._active.__exit__(kind, exc, tb)
        if exc is not None:
            self._stage = None  # it never answered: a failed stage has no duration to report
            self.finish(error_code(exc))

    def stage(self, name: str) -> None:
        """Stage ``name`` (``upstream``, ``tool_loop``) starts now; `end_stage` or `finish` ends it."""
        self._stage, self._stage_started = name, self.clock()

    def end_stage(self) -> None:
        """Record the running stage's duration (once)."""
        if self._stage is not None:
            self._observer.on_stage(self._stage, self.clock() - self._stage_started)
            self._stage = None

    def answered(self, done: Completed) -> None:
        """A whole answer came back: its worker, and its usage, id and model when it is a 200."""
        self.generation.worker = done.worker
        if done.status == 200:
            read_completion(done.body, self.generation)

    def failed(self, exc: BaseException) -> None:
        """``exc`` ended the route's stream (unless an earlier error already did)."""
        if self.generation.error is None:
            self.generation.error = error_code(exc)

    def finish(self, error: str | None = None) -> None:
        """Record the route (once): a stage still running, what it generated, its span, its outcome
        (``error``, else ``generation.error``, else success)."""
        if self.finished:
            return
        self.finished = True
        now = self.clock()
        done = self.generation
        if error is not None:
            done.error = error
        if self._stage is not None:
            self._observer.on_stage(self._stage, now - self._stage_started)
        if done.first_token is not None or done.tokens is not None:
            ttft = None if done.first_token is None else done.first_token - self.started
            self._observer.on_generation(self._model, ttft=ttft, tpot=done.tpot, tokens=done.tokens)
        span = self.span
        if span.recording:  # tracing off: no attribute work
            _annotate(span, done)
        if done.error is not None:
            span.fail(done.error)
        span.end()
        if done.loop is not None:
            done.loop.end(self._model, done)
        self._observer.on_routed(
            self._model, streaming=self._streaming, duration=now - self.started, error_code=done.error
        )


def _annotate(route: TraceSpan, done: Generation) -> None:
    """What is known of the answer, on the route span (GenAI semantic-convention names where they exist)."""
    if done.worker:
        route.set("smg.worker", done.worker)
    if done.response_id:
        route.set("gen_ai.response.id", done.response_id)
    if done.response_model:
        route.set("gen_ai.response.model", done.response_model)
    if done.tokens is not None:
        route.set("gen_ai.usage.input_tokens", done.tokens[0])
        route.set("gen_ai.usage.output_tokens", done.tokens[1])
    if done.iterations:
        route.set("smg.loop.iterations", done.iterations)
    if done.stop_reason:
        route.set("smg.loop.stop_reason", done.stop_reason)


class RouteStream:
    """The client's bytes of one routed stream: iterate it, then `aclose` it once, however far the
    iteration got. ``body`` records the route when it ends; when it never started (the client left
    before the response head went out, so nothing of it ran, its ``finally`` neither), `aclose` runs
    ``release`` (what the opened stream holds: the worker's connection) and records the route as
    ``client_disconnected``."""

    __slots__ = ("_body", "_release", "_route")

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        route: RouteRecorder,
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self._body = body
        self._route = route
        self._release = release

    def __aiter__(self) -> AsyncGenerator[bytes, None]:
        return self._body  # ``async for`` steps the body itself: no cost per chunk

    async def __anext__(self) -> bytes:
        return await self._body.__anext__()

    async def aclose(self) -> None:
        await self._body.aclose()
        if not self._route.finished:
            try:
                await self._release()
            finally:
                self._route.finish(CLIENT_DISCONNECTED)
