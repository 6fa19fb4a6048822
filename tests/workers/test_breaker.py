"""The per-worker circuit breaker, driven by a fake clock."""

from __future__ import annotations

import pytest

from smg.settings import BreakerSettings
from smg.workers.breaker import BreakerState, CircuitBreaker

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


class Transitions:
    def __init__(self) -> None:
        self.seen: list[tuple[BreakerState, BreakerState]] = []

    def __call__(self, old: BreakerState, new: BreakerState) -> None:
        self.seen.append((old, new))


def make_breaker(
    clock: FakeClock, hook: Transitions | None = None, *, enabled: bool = True
) -> CircuitBreaker:
    config = BreakerSettings(failure_threshold=3, success_threshold=2, timeout_secs=10.0, enabled=enabled)
    return CircuitBreaker(config, clock=clock, on_transition=hook)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hook() -> Transitions:
    return Transitions()


@pytest.fixture
def breaker(clock: FakeClock, hook: Transitions) -> CircuitBreaker:
    """Opens after 3 consecutive failures, stays open 10 s, closes after 2 successes; reports to ``hook``."""
    return make_breaker(clock, hook)


@pytest.fixture
def timed_out(breaker: CircuitBreaker, clock: FakeClock) -> CircuitBreaker:
    """``breaker`` opened by 3 failures, its 10 s open timeout just over: half-open when next looked at."""
    fail(breaker, 3)
    clock.advance(10)
    return breaker


def test_new_breaker_is_closed_and_allows_requests(breaker: CircuitBreaker) -> None:
    assert breaker.state is CLOSED
    assert breaker.allows()


def test_breaker_opens_after_failure_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.allows()

    breaker.record_failure()
    assert breaker.state is OPEN
    assert not breaker.allows()


def test_a_success_between_failures_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)

    assert breaker.state is CLOSED
    breaker.record_failure()
    assert breaker.state is OPEN


def test_open_breaker_refuses_until_timeout_then_half_opens(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)

    clock.advance(9.999)
    assert not breaker.allows()
    assert breaker.state is OPEN

    clock.advance(0.001)
    assert breaker.allows()
    assert breaker.state is HALF_OPEN


def test_half_open_breaker_closes_after_success_threshold_successes(timed_out: CircuitBreaker) -> None:
    breaker = timed_out

    breaker.record_success()
    assert breaker.state is HALF_OPEN
    breaker.record_success()
    assert breaker.state is CLOSED
    assert breaker.allows()


def test_any_failure_in_half_open_reopens_for_a_fresh_timeout(
    timed_out: CircuitBreaker, clock: FakeClock
) -> None:
    breaker = timed_out
    breaker.record_success()

    breaker.record_failure()
    assert breaker.state is OPEN

    clock.advance(9.9)
    assert not breaker.allows()
    clock.advance(0.1)
    assert breaker.state is HALF_OPEN


def test_half_open_successes_do_not_carry_over_a_reopen(timed_out: CircuitBreaker, clock: FakeClock) -> None:
    breaker = timed_out
    breaker.record_success()
    breaker.record_failure()
    clock.advance(10)

    breaker.record_success()

    assert breaker.state is HALF_OPEN


def test_a_closed_again_breaker_counts_failures_from_zero(timed_out: CircuitBreaker) -> None:
    breaker = timed_out
    breaker.record_success()
    breaker.record_success()

    fail(breaker, 2)

    assert breaker.state is CLOSED


def test_failures_while_open_do_not_extend_the_timeout(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)

    clock.advance(5)
    fail(breaker, 5)
    clock.advance(5)

    assert breaker.state is HALF_OPEN


def test_transitions_are_reported_to_the_hook_in_order(
    timed_out: CircuitBreaker, clock: FakeClock, hook: Transitions
) -> None:
    breaker = timed_out

    breaker.record_failure()
    clock.advance(10)
    breaker.record_success()
    breaker.record_success()

    assert hook.seen == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_reading_the_state_repeatedly_reports_each_transition_once(
    timed_out: CircuitBreaker, hook: Transitions
) -> None:
    breaker = timed_out

    for _ in range(3):
        assert breaker.state is HALF_OPEN

    assert hook.seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


def test_disabled_breaker_never_opens(clock: FakeClock, hook: Transitions) -> None:
    breaker = make_breaker(clock, hook, enabled=False)

    fail(breaker, 100)

    assert breaker.allows()
    assert breaker.state is CLOSED
    assert hook.seen == []


def test_state_values_match_the_gauge_and_labels() -> None:
    assert [(s.value, s.label) for s in BreakerState] == [(0, "closed"), (1, "open"), (2, "half_open")]
