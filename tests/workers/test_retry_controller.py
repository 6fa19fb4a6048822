"""The worker retry policy is a tenacity controller built from the settings: stop, wait and retry
strategies, the before-sleep and exhaustion hooks, and the first attempt replayed into it."""

from __future__ import annotations

import random

import pytest
from tenacity import AsyncRetrying, stop_after_attempt

from smg.errors import UpstreamConnectError, UpstreamError, UpstreamStatusError, UpstreamTimeout
from smg.settings import RetrySettings
from smg.workers.retry import JitteredBackoff, RetryPolicy, backoff_secs
from tests.tenacity_spy import record_tenacity_runs

W = "http://w"


class _Recorder:
    def __init__(self) -> None:
        self.slept: list[float] = []
        self.retries: list[tuple[float, str]] = []
        self.exhausted = 0

    async def sleep(self, secs: float) -> None:
        self.slept.append(secs)

    def on_retry(self, delay: float, exc: UpstreamError) -> None:
        self.retries.append((delay, type(exc).__name__))

    def on_exhausted(self) -> None:
        self.exhausted += 1


def _policy(config: RetrySettings, seen: _Recorder, rng: random.Random | None = None) -> RetryPolicy:
    return RetryPolicy(
        config,
        sleep=seen.sleep,
        rng=rng or random.Random(0),
        on_retry=seen.on_retry,
        on_exhausted=seen.on_exhausted,
    )


def test_the_policy_is_one_tenacity_controller_built_from_the_settings() -> None:
    policy = _policy(RetrySettings(max_retries=4), _Recorder())

    assert isinstance(policy.controller, AsyncRetrying)
    assert isinstance(policy.controller.stop, stop_after_attempt)
    assert policy.controller.stop.max_attempt_number == 4
    assert isinstance(policy.controller.wait, JitteredBackoff)


async def test_retries_run_under_tenacity_after_the_first_failure_with_the_jittered_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenacity_runs = record_tenacity_runs(monkeypatch)
    config = RetrySettings(max_retries=5, initial_backoff_ms=100, backoff_multiplier=2, jitter_factor=0.2)
    seen = _Recorder()
    policy = _policy(config, seen, random.Random(7))
    failures: list[UpstreamError] = [
        UpstreamTimeout("slow", worker=W),
        UpstreamConnectError("refused", worker=W),
    ]
    numbers: list[int] = []

    async def attempt(number: int) -> str:
        numbers.append(number)
        if failures:
            raise failures.pop(0)
        return f"answer of attempt {number}"

    result = await policy.resume(UpstreamConnectError("first", worker=W), attempt)

    assert result == "answer of attempt 4"
    assert numbers == [2, 3, 4]  # attempt 1 is the first failure, replayed: not sent again
    expected = random.Random(7)
    assert seen.slept == [backoff_secs(n, config, expected) for n in (1, 2, 3)]
    assert seen.retries == [
        (seen.slept[0], "UpstreamConnectError"),
        (seen.slept[1], "UpstreamTimeout"),
        (seen.slept[2], "UpstreamConnectError"),
    ]
    assert seen.exhausted == 0
    (run,) = tenacity_runs
    assert run.controller is not policy.controller  # a copy per request: concurrent runs keep apart
    assert run.attempts == 4
    assert run.idle_for == pytest.approx(sum(seen.slept))


async def test_an_exhausted_budget_raises_the_last_failure_and_draws_no_jitter_for_a_retry_not_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenacity_runs = record_tenacity_runs(monkeypatch)
    config = RetrySettings(max_retries=3, jitter_factor=0.5)
    seen = _Recorder()
    rng = random.Random(3)
    policy = _policy(config, seen, rng)
    last = UpstreamStatusError(503, b"{}", content_type="application/json", worker=W)

    async def attempt(number: int) -> str:
        raise last

    with pytest.raises(UpstreamStatusError) as caught:
        await policy.resume(UpstreamTimeout("slow", worker=W), attempt)

    assert caught.value is last
    assert seen.exhausted == 1
    assert len(seen.slept) == 2
    expected = random.Random(3)
    assert seen.slept == [backoff_secs(n, config, expected) for n in (1, 2)]
    # The random source moved exactly twice: the wait after the last attempt drew nothing.
    assert rng.getstate() == expected.getstate()
    (run,) = tenacity_runs
    assert run.attempts == 3


async def test_a_failure_that_is_not_retryable_ends_the_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tenacity_runs = record_tenacity_runs(monkeypatch)
    seen = _Recorder()
    policy = _policy(RetrySettings(max_retries=5), seen)
    refused = UpstreamStatusError(400, b"{}", content_type="application/json", worker=W)

    async def attempt(number: int) -> str:
        raise refused

    with pytest.raises(UpstreamStatusError) as caught:
        await policy.resume(UpstreamConnectError("first", worker=W), attempt)

    assert caught.value is refused
    assert len(seen.slept) == 1 and seen.exhausted == 0
    assert tenacity_runs[0].attempts == 2


@pytest.mark.parametrize(
    ("config", "first", "resumes"),
    [
        (RetrySettings(max_retries=5), UpstreamConnectError("refused", worker=W), True),
        (RetrySettings(max_retries=1), UpstreamConnectError("refused", worker=W), False),
        (RetrySettings(enabled=False), UpstreamTimeout("slow", worker=W), False),
        (
            RetrySettings(max_retries=5),
            UpstreamStatusError(404, b"{}", content_type="application/json", worker=W),
            False,
        ),
    ],
    ids=["retryable", "one-attempt-budget", "retries-off", "not-retryable"],
)
def test_only_a_retryable_first_failure_with_attempts_left_is_handed_to_tenacity(
    config: RetrySettings, first: UpstreamError, resumes: bool
) -> None:
    assert _policy(config, _Recorder()).resumes(first) is resumes
