"""Dispatch one request to a worker: select -> attempt (with retries) -> record the outcome.

The first attempt runs plain; only when it failed retryably does the tenacity controller of
`smg.workers.retry.RetryPolicy` run the retries, each on a worker not yet tried when there is one.

``complete`` returns a finished response (its body read inside the attempt, so a broken body is retried).
``open_stream`` retries until a worker answers 2xx headers; from then on nothing is retried, because
bytes are about to reach the client.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TypeVar

from smg.errors import NoAvailableWorkers, UpstreamError, UpstreamProtocolError, UpstreamStatusError
from smg.settings import RetrySettings
from smg.spans import AttemptSpan, Tracer
from smg.workers.client import UpstreamResponse, WorkerClient
from smg.workers.hooks import WorkerObserver
from smg.workers.policies import SelectionPolicy
from smg.workers.retry import RETRYABLE_STATUS, RetryPolicy, Sleep, error_type
from smg.workers.worker import Worker, WorkerRegistry

T = TypeVar("T")
CHAT_PATH = "/v1/chat/completions"
# A worker path's GenAI operation (`gen_ai.operation.name`, the attempt span's name).
_OPERATIONS = {CHAT_PATH: "chat", "/v1/completions": "text_completion", "/v1/embeddings": "embeddings"}
"""The worker path of chat requests; other pass-through routes name their own (`smg.routing.passthrough`)."""


@dataclass(frozen=True)
class Completed:
    status: int
    content_type: str
    body: bytes
    worker: str


def _record(worker: Worker, status: int | None, exc: UpstreamError | None) -> str | None:
    """Feed the breaker from one attempt; returns the worker error label, None when the worker did fine.

    Judged by status wherever there is one: 408 and 5xx are failures, 429 counts as neither, other
    statuses (a client's 4xx included) are successes. Transport errors are failures. Both arguments
    None means no verdict (the client went away or the attempt was cancelled).
    """
    if isinstance(exc, UpstreamStatusError):
        status = exc.upstream_status
    elif exc is not None:
        worker.breaker.record_failure()
        return error_type(exc)
    if status is None:
        return None
    if status == 429:
        return "status_429"
    if status == 408 or status >= 500:
        worker.breaker.record_failure()
        return f"status_{status}" if status in RETRYABLE_STATUS else "status_other"
    worker.breaker.record_success()
    return None


class UpstreamStream:
    """A worker stream that answered 2xx. Iterate `chunks()`, then `aclose()` exactly once."""

    def __init__(
        self, resp: UpstreamResponse, stack: AsyncExitStack, dispatcher: Dispatcher, span: AttemptSpan
    ) -> None:
        self._resp = resp
        self._stack = stack
        self._dispatcher = dispatcher
        self._span = span
        self.worker = resp.worker

    def chunks(self) -> AsyncIterator[bytes]:
        return self._resp.iter_chunks()

    async def release(self) -> None:
        """`aclose` for a stream nobody read: the connection is released, the worker gets no verdict."""
        await self.aclose(completed=False)

    async def aclose(self, *, failure: UpstreamError | None = None, completed: bool = True) -> None:
        """Release the connection; record success, ``failure``, or nothing (client went away)."""
        # Record first: the close below may be interrupted when the client's disconnect cancels us.
        self._dispatcher._finish(
            self.worker, 200 if completed and failure is None else None, failure, self._span
        )
        await self._stack.aclose()


class Dispatcher:
    def __init__(
        self,
        registry: WorkerRegistry,
        client: WorkerClient,
        policy: SelectionPolicy,
        retry: RetrySettings,
        *,
        observer: WorkerObserver,
        tracer: Tracer,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._tracer = tracer
        self._registry = registry
        self._client = client
        self._policy = policy
        self._observer = observer
        self._retries = RetryPolicy(
            retry,
            sleep=sleep,
            rng=rng or random.Random(),
            on_retry=self._on_retry,
            on_exhausted=observer.on_retries_exhausted,
        )

    @property
    def policy_name(self) -> str:
        """The name of the worker selection policy (``round_robin``, ...)."""
        return self._policy.name

    async def complete(
        self,
        model: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        affinity_key: bytes | None,
        path: str = CHAT_PATH,
    ) -> Completed:
        """POST a non-streaming request to the worker's ``path``. Raises NoAvailableWorkers,
        ModelNotFound, UpstreamError."""

        async def once(worker: Worker, attempt: int) -> Completed:
            span = self._begin(model, worker, attempt, path)
            status: int | None = None
            failure: UpstreamError | None = None
            sent = span.inject(headers)
            try:
                async with self._client.post(worker, path, body, headers=sent, stream=False) as resp:
                    data = await resp.read()
                    status = resp.status
                    if status >= 300:  # retried only when retryable; otherwise passed through as is
                        raise UpstreamStatusError(
                            status, data, content_type=resp.content_type, worker=worker.url
                        )
                    return Completed(status, resp.content_type, data, worker.url)
            except UpstreamError as exc:
                failure = exc
                raise
            finally:
                self._finish(worker, status, failure, span)

        return await self._with_retries(model, affinity_key, once)

    async def open_stream(
        self,
        model: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        affinity_key: bytes | None,
        path: str = CHAT_PATH,
    ) -> UpstreamStream:
        """Open a streaming request to the ``path`` of a worker that answers 2xx.

        Raises NoAvailableWorkers, ModelNotFound, UpstreamError (a non-2xx answer as UpstreamStatusError).
        """

        async def once(worker: Worker, attempt: int) -> UpstreamStream:
            span = self._begin(model, worker, attempt, path)
            stack = AsyncExitStack()
            try:
                resp = await stack.enter_async_context(
                    self._client.post(worker, path, body, headers=span.inject(headers), stream=True)
                )
                if resp.status >= 300:
                    data = await resp.read()
                    raise UpstreamStatusError(
                        resp.status, data, content_type=resp.content_type, worker=worker.url
                    )
                media_type = resp.content_type.partition(";")[0].strip().lower()
                if media_type != "text/event-stream":  # e.g. a worker that ignored "stream": true
                    raise UpstreamProtocolError(
                        f"worker answered a stream request with {media_type or 'no content type'}, "
                        "not text/event-stream",
                        worker=worker.url,
                    )
            except UpstreamError as exc:
                await stack.aclose()
                self._finish(worker, None, exc, span)
                raise
            except BaseException:
                await stack.aclose()
                self._finish(worker, None, None, span)
                raise
            return UpstreamStream(resp, stack, self, span)

        return await self._with_retries(model, affinity_key, once)

    async def _with_retries(
        self, model: str, affinity_key: bytes | None, once: Callable[[Worker, int], Awaitable[T]]
    ) -> T:
        worker = self._select(model, affinity_key, None)
        try:
            return await once(worker, 1)
        except UpstreamError as exc:
            if not self._retries.resumes(exc):
                raise
            first = exc
        return await self._retry(model, affinity_key, once, first, worker.url)

    async def _retry(
        self,
        model: str,
        affinity_key: bytes | None,
        once: Callable[[Worker, int], Awaitable[T]],
        first: UpstreamError,
        first_worker: str,
    ) -> T:
        """Attempts 2, 3, ... under the retry policy's tenacity controller, after ``first``."""
        tried = {first_worker}
        last = first

        async def attempt(number: int) -> T:
            nonlocal last
            try:
                worker = self._select(model, affinity_key, tried)
            except NoAvailableWorkers:  # a retry found no worker left: report what the last one did
                raise last from None
            tried.add(worker.url)
            try:
                return await once(worker, number)
            except UpstreamError as exc:
                last = exc
                raise

        return await self._retries.resume(first, attempt)

    def _on_retry(self, delay: float, exc: UpstreamError) -> None:
        self._observer.on_retry(delay_secs=delay, error_type=error_type(exc))

    def _select(self, model: str, affinity_key: bytes | None, tried: set[str] | None) -> Worker:
        started = time.perf_counter()
        candidates = self._registry.candidates(model)
        if tried:  # a retry: prefer a worker not yet tried
            candidates = [w for w in candidates if w.url not in tried] or candidates
        worker = self._policy.select(candidates, affinity_key=affinity_key)
        self._observer.on_selected(self._policy.name, worker.url, duration=time.perf_counter() - started)
        return worker

    def _begin(self, model: str, worker: Worker, attempt: int, path: str) -> AttemptSpan:
        worker.in_flight += 1
        self._observer.on_attempt(worker.url, active=worker.in_flight)
        operation = _OPERATIONS.get(path, "chat")
        return self._tracer.start_attempt(model, worker.url, attempt=attempt, operation=operation)

    def _finish(
        self, worker: Worker, status: int | None, failure: UpstreamError | None, span: AttemptSpan
    ) -> None:
        worker.in_flight -= 1
        label = _record(worker, status, failure)
        self._observer.on_attempt_done(worker.url, active=worker.in_flight, error_type=label)
        if isinstance(failure, UpstreamStatusError):
            status = failure.upstream_status
        if label is not None:  # a failed attempt; a successful one costs only this test
            worker.note_error(failure, status)
        span.end(status=status, error=label or (error_type(failure) if failure else None))
