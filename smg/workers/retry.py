"""Retry policy for worker attempts, on tenacity.

Retryable: connect errors, timeouts, a broken response body, and HTTP 408/429/500/502/503/504.
``--retry-max-retries`` counts total attempts. The n-th retry waits
``min(initial * multiplier**(n-1), max) * (1 + U(-jitter, jitter))``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import tenacity

from smg.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from smg.settings import RetrySettings

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


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


class _Backoff(tenacity.wait.wait_base):
    def __init__(self, config: RetrySettings, rng: random.Random) -> None:
        self._config = config
        self._rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return backoff_secs(retry_state.attempt_number, self._config, self._rng)


def retrying(
    config: RetrySettings,
    *,
    sleep: Sleep,
    rng: random.Random,
    before_sleep: Callable[[tenacity.RetryCallState], None],
) -> tenacity.AsyncRetrying:
    """A tenacity controller for one request; re-raises the last error when attempts run out."""
    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(config.attempts),
        wait=_Backoff(config, rng),
        retry=tenacity.retry_if_exception(is_retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
