"""Retry policies of the worker layer, defined and run by tenacity.

Worker attempts (`RetryPolicy`): retryable are connect errors, timeouts, a broken response body, and
HTTP 408/429/500/502/503/504. ``--retry-max-retries`` counts total attempts. The n-th retry waits
``min(initial * multiplier**(n-1), max) * (1 + U(-jitter, jitter))``.

The first attempt of a request runs without any controller: building one per request cost about as much
as the rest of the dispatcher (docs/adr/0008-retry-loop-without-tenacity.md). Only once it failed with a
retryable error, and attempts remain, does a tenacity controller take over (`RetryPolicy.resume`). Its
strategies are built once from the settings; it is handed the first failure as its attempt 1, so its
attempt numbers, stop and wait cover the whole request.

Background jobs (`every`): the health prober and the worker-file watcher run again every interval,
whatever the last run did, so a failed probe, discovery or file read is retried at the next one.
Without health checks nothing probes, so a worker's model discovery that failed is retried on its own
(`until_done`): 1 s after the failure, doubling to at most 60 s, until it succeeds.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_fixed,
)
from tenacity.wait import wait_base

from smg.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from smg.settings import RetrySettings

log = logging.getLogger("smg.workers")
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, UpstreamStatusError):
        return exc.upstream_status in RETRYABLE_STATUS
    return isinstance(exc, (UpstreamConnectError, UpstreamTimeout, UpstreamProtocolError))


def error_type(exc: UpstreamError) -> str:
    """Bounded label for an upstream failure (metrics ``error_type``)."""
    if isinstance(exc, UpstreamStatusError):
        return f"status_{exc.upstream_status}" if exc.upstream_status in RETRYABLE_STATUS else "status_other"
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, UpstreamConnectError):
        return "connect_error"
    return "protocol_error"


def backoff_secs(retry_number: int, config: RetrySettings, rng: random.Random) -> float:
    """Delay before retry number ``retry_number`` (1 = the first retry), in seconds."""
    base_ms = min(
        config.initial_backoff_ms * config.backoff_multiplier ** (retry_number - 1), config.max_backoff_ms
    )
    jitter = rng.uniform(-config.jitter_factor, config.jitter_factor) if config.jitter_factor else 0.0
    return max(0.0, base_ms * (1.0 + jitter)) / 1000.0


class JitteredBackoff(wait_base):
    """tenacity wait strategy: `backoff_secs` of the attempt that just failed (attempt n is followed by
    retry n). After the last attempt it is 0 without drawing jitter: tenacity asks for the wait before the
    stop strategy ends the run, and a retry that will not happen must not move the random source."""

    def __init__(self, config: RetrySettings, rng: random.Random) -> None:
        self._config = config
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        number = retry_state.attempt_number
        if number >= self._config.attempts:
            return 0.0
        return backoff_secs(number, self._config, self._rng)


class RetryPolicy:
    """The worker retry policy as one tenacity controller, built once from `RetrySettings`:
    stop after ``config.attempts`` attempts, wait `JitteredBackoff`, retry `is_retryable` failures.

    ``on_retry(delay, error)`` runs before each backoff sleep (tenacity's ``before_sleep``);
    ``on_exhausted()`` when the last attempt failed retryably (its ``retry_error_callback``), after which
    that failure is raised. Any other failure, cancellation included, is raised at once.
    """

    def __init__(
        self,
        config: RetrySettings,
        *,
        sleep: Sleep,
        rng: random.Random,
        on_retry: Callable[[float, UpstreamError], None],
        on_exhausted: Callable[[], None],
    ) -> None:
        self.attempts = config.attempts

        def before_sleep(state: RetryCallState) -> None:
            on_retry(state.upcoming_sleep, _failure(state))

        def exhausted(state: RetryCallState) -> Any:
            on_exhausted()
            return _outcome(state).result()  # raises the last attempt's failure

        self.controller = AsyncRetrying(
            sleep=sleep,
            stop=stop_after_attempt(config.attempts),
            wait=JitteredBackoff(config, rng),
            retry=retry_if_exception(is_retryable),
            before_sleep=before_sleep,
            retry_error_callback=exhausted,
            reraise=True,
        )

    def resumes(self, first: UpstreamError) -> bool:
        """Whether a first attempt that failed with ``first`` is retried: the controller's own retry and
        stop decisions for attempt 1, without building one."""
        return self.attempts > 1 and is_retryable(first)

    async def resume(self, first: UpstreamError, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Finish a request whose first attempt failed with ``first`` (`resumes` was true): a fresh copy
        of the controller (tenacity keeps a run's state on the controller, so concurrent requests each
        need their own) replays ``first`` as attempt 1, then runs ``attempt(2)``, ``attempt(3)``, ..."""
        number = 0

        async def next_attempt() -> T:
            nonlocal number
            number += 1
            if number == 1:
                raise first
            return await attempt(number)

        result: T = await self.controller.copy()(next_attempt)
        return result


def every(interval_secs: float, *, sleep: Sleep, job: str) -> AsyncRetrying:
    """The policy of a background job that runs again ``interval_secs`` after each run, forever: a run
    that raised (logged with its traceback, naming ``job``) is retried like one that finished.
    Cancellation is never retried: it ends the run."""

    def log_failure(state: RetryCallState) -> None:
        failure = _outcome(state).exception()
        if failure is not None:
            log.error("%s failed; next run in %g s", job, interval_secs, exc_info=failure)

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_never,
        wait=wait_fixed(interval_secs),
        retry=retry_if_result(lambda _result: True) | retry_if_exception_type(Exception),
        before_sleep=log_failure,
    )


def until_done(*, sleep: Sleep, job: str, initial_secs: float = 1.0, max_secs: float = 60.0) -> AsyncRetrying:
    """The policy of a background job run until it returns True: after a run that returned False or
    raised (logged with its traceback, naming ``job``), wait ``initial_secs``, doubling each time up to
    ``max_secs``. Never gives up by itself: the caller cancels it (cancellation is never retried)."""

    def log_failure(state: RetryCallState) -> None:
        failure = _outcome(state).exception()
        if failure is not None:
            log.error("%s failed; next try in %g s", job, state.upcoming_sleep, exc_info=failure)

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_never,
        wait=wait_exponential(multiplier=initial_secs, max=max_secs),
        retry=retry_if_result(lambda done: not done) | retry_if_exception_type(Exception),
        before_sleep=log_failure,
    )


def _outcome(state: RetryCallState) -> Any:
    if state.outcome is None:  # tenacity calls these hooks only after an attempt
        raise RuntimeError("retry hook called before any attempt")
    return state.outcome


def _failure(state: RetryCallState) -> UpstreamError:
    failure = _outcome(state).exception()
    if not isinstance(failure, UpstreamError):  # only `is_retryable` upstream failures are retried
        raise TypeError(f"retried a {type(failure).__name__}")
    return failure
