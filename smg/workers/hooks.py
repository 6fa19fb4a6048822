"""Telemetry seam of the workers layer: `smg.observability` implements it, tests may too."""

from __future__ import annotations

from typing import Protocol

from smg.workers.breaker import BreakerState


class WorkerObserver(Protocol):
    def on_selected(self, policy: str, worker: str, *, duration: float) -> None: ...
    def on_attempt(self, worker: str, *, active: int) -> None: ...
    def on_attempt_done(self, worker: str, *, active: int, error_type: str | None) -> None: ...
    def on_retry(self, *, delay_secs: float, error_type: str) -> None: ...
    def on_retries_exhausted(self) -> None: ...
    def on_breaker_transition(self, worker: str, old: BreakerState, new: BreakerState) -> None: ...
    def on_health(self, worker: str, healthy: bool) -> None: ...
    def on_pool_changed(self, workers: list[str], *, source: str, change: str) -> None: ...


class NullWorkerObserver:
    """Observer that records nothing."""

    def on_selected(self, policy: str, worker: str, *, duration: float) -> None:
        pass

    def on_attempt(self, worker: str, *, active: int) -> None:
        pass

    def on_attempt_done(self, worker: str, *, active: int, error_type: str | None) -> None:
        pass

    def on_retry(self, *, delay_secs: float, error_type: str) -> None:
        pass

    def on_retries_exhausted(self) -> None:
        pass

    def on_breaker_transition(self, worker: str, old: BreakerState, new: BreakerState) -> None:
        pass

    def on_health(self, worker: str, healthy: bool) -> None:
        pass

    def on_pool_changed(self, workers: list[str], *, source: str, change: str) -> None:
        pass
