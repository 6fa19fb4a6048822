"""Backoff schedule and retryability of upstream failures."""

from __future__ import annotations

import random

import pytest

from smg.errors import (
    NoAvailableWorkers,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from smg.settings import RetrySettings
from smg.workers.retry import backoff_secs, is_retryable


def _base_ms(n: int, config: RetrySettings) -> float:
    return min(config.initial_backoff_ms * config.backoff_multiplier ** (n - 1), config.max_backoff_ms)


@pytest.mark.parametrize("seed", [0, 1, 2, 42, 1234])
@pytest.mark.parametrize(
    "config",
    [
        RetrySettings(),
        RetrySettings(initial_backoff_ms=100, max_backoff_ms=400, backoff_multiplier=2, jitter_factor=0.5),
        RetrySettings(jitter_factor=1.0),
    ],
    ids=["defaults", "capped", "full-jitter"],
)
def test_backoff_stays_within_the_jittered_exponential_bounds(seed: int, config: RetrySettings) -> None:
    rng = random.Random(seed)

    for n in range(1, 9):
        base = _base_ms(n, config) / 1000
        delay = backoff_secs(n, config, rng)
        assert base * (1 - config.jitter_factor) - 1e-12 <= delay <= base * (1 + config.jitter_factor) + 1e-12


def test_jitter_actually_varies_the_delay() -> None:
    rng = random.Random(5)

    delays = {backoff_secs(1, RetrySettings(), rng) for _ in range(20)}

    assert len(delays) > 1


@pytest.mark.parametrize(
    ("n", "expected_secs"),
    [(1, 0.05), (2, 0.075), (3, 0.1125), (4, 0.16875), (8, 0.05 * 1.5**7)],
)
def test_backoff_without_jitter_is_exactly_exponential(n: int, expected_secs: float) -> None:
    config = RetrySettings(jitter_factor=0)

    assert backoff_secs(n, config, random.Random(0)) == pytest.approx(expected_secs)


def test_backoff_without_jitter_is_capped_at_max_backoff() -> None:
    config = RetrySettings(initial_backoff_ms=100, max_backoff_ms=250, backoff_multiplier=2, jitter_factor=0)

    delays = [backoff_secs(n, config, random.Random(0)) for n in range(1, 6)]

    assert delays == pytest.approx([0.1, 0.2, 0.25, 0.25, 0.25])


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (UpstreamConnectError("refused", worker="http://w"), True),
        (UpstreamTimeout("slow", worker="http://w"), True),
        (UpstreamProtocolError("broken body", worker="http://w"), True),
        (UpstreamError("something else", worker="http://w"), False),
        (NoAvailableWorkers("none"), False),
        (ValueError("not ours"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_transport_failures_are_retryable_other_errors_are_not(exc: BaseException, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(status, True) for status in (408, 429, 500, 502, 503, 504)],
        *[(status, False) for status in (400, 401, 404, 422, 501)],
    ],
)
def test_worker_statuses_are_retryable_only_when_transient(status: int, retryable: bool) -> None:
    exc = UpstreamStatusError(status, b"{}", content_type="application/json", worker="http://w")

    assert is_retryable(exc) is retryable
