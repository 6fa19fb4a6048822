"""Per-worker circuit breaker: closed -> open -> half_open -> closed.

- closed: requests flow; ``failure_threshold`` consecutive failures open it.
- open: requests are refused until ``timeout_secs`` have passed on the injected clock, then half_open.
- half_open: requests flow; ``success_threshold`` successes close it, any failure reopens it.

A 429 is recorded as neither success nor failure (the caller simply does not record it).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from smg.settings import BreakerSettings


class BreakerState(enum.IntEnum):
    """Values match the ``smg_worker_cb_state`` gauge: 0 closed, 1 open, 2 half_open."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


TransitionHook = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """State machine of one worker's breaker; time comes from ``clock`` (monotonic seconds).

    ``changed_at`` is the wall-clock time (unix seconds) of the last transition, None before the first:
    the move of an open breaker to half_open is dated when its timeout passed, not when it was noticed."""

    def __init__(
        self,
        config: BreakerSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self.changed_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose timeout has passed reports (and becomes) half_open."""
        if self._state is BreakerState.OPEN:
            overdue = self._clock() - self._opened_at - self._config.timeout_secs
            if overdue >= 0:
                self._move(BreakerState.HALF_OPEN, ago=overdue)
        return self._state

    def allows(self) -> bool:
        """True when a request may be sent through this breaker now."""
        return not self._config.enabled or self.state is not BreakerState.OPEN

    def record_success(self) -> None:
        if not self._config.enabled:
            return
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self._config.success_threshold:
                self._move(BreakerState.CLOSED)
        else:
            self._failures = 0

    def record_failure(self) -> None:
        if not self._config.enabled:
            return
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
        elif state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._config.failure_threshold:
                self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState, *, ago: float = 0.0) -> None:
        old, self._state = self._state, new
        self._failures = 0
        self._successes = 0
        if old is not new:
            self.changed_at = time.time() - ago
            if self._on_transition is not None:
                self._on_transition(old, new)
