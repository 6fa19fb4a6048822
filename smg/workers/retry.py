"""Retry policy for worker attempts.

Retryable: connect errors, timeouts, a broken response body, and HTTP 408/429/500/502/503/504.
``--retry-max-retries`` counts total attempts. The n-th retry waits
``min(initial * multiplier**(n-1), max) * (1 + U(-jitter, jitter))``.

The loop is written out (`with_retries`) rather than driven by a tenacity controller: building one per
request cost about as much as the rest of the dispatcher (docs/benchmarks.md, "Where the time goes").
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

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


async def with_retries(
    config: RetrySettings,
    attempt: Callable[[int], Awaitable[T]],
    *,
    sleep: Sleep,
    rng: random.Random,
    on_retry: Callable[[float, UpstreamError], None],
) -> T:
    """``attempt(1)``, ``attempt(2)``, ... until one returns. A retryable `UpstreamError` is retried
    after `backoff_secs` (``on_retry(delay, error)`` is told first) while attempts remain; it, or any
    other exception, propagates otherwise."""
    number = 1
    while True:
        try:
            return await attempt(number)
        except UpstreamError as exc:
            if number >= config.attempts or not is_retryable(exc):
                raise
            delay = backoff_secs(number, config, rng)
            on_retry(delay, exc)
        await sleep(delay)
        number += 1
