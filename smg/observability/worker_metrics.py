"""`WorkerMetrics`: the workers layer's hooks recorded as the ``smg_worker_*`` families."""

from __future__ import annotations

import logging

from smg.observability.cells import counter_add, gauge_set, histogram_observe
from smg.observability.guard import HOOK_FAILED, Children, guarded
from smg.observability.metrics import Metrics
from smg.workers.breaker import BreakerState

log = logging.getLogger("smg.observability")  # the telemetry guard's, as `guarded` logs


class WorkerMetrics:
    """`smg.workers.hooks.WorkerObserver` backed by Prometheus metrics.

    Per-worker series exist for the registered workers only: the pool's membership (``on_pool_changed``)
    says which; a worker that left loses every series labelled with it, and a late report about it (a
    request that was in flight, its breaker) is not recorded.

    The hooks every request runs (selection, attempt, its end) write through the updaters of
    `smg.observability.cells` and carry their guard inline."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._selection = Children(metrics.worker_selection, counter_add)
        self._active = Children(metrics.worker_active, gauge_set)
        self._select_stage = histogram_observe(metrics.router_stage.labels("select"))
        self._live: dict[str, str] = {}  # registered worker URL -> its label value

    def on_selected(self, policy: str, worker: str, *, duration: float) -> None:
        try:
            w = self._live.get(worker)
            if w is not None:
                self._selection(policy, w)(1.0)
            self._select_stage(duration)
        except Exception:  # the telemetry guard: a metrics bug must never fail a request
            log.exception(HOOK_FAILED, "on_selected")

    def on_attempt(self, worker: str, *, active: int) -> None:
        try:
            w = self._live.get(worker)
            if w is not None:
                self._active(w)(active)
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_attempt")

    def on_attempt_done(self, worker: str, *, active: int, error_type: str | None) -> None:
        try:
            w = self._live.get(worker)
            if w is not None:
                self._active(w)(active)
            if error_type is not None:
                self._m.worker_errors.labels(error_type).inc()
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_attempt_done")

    @guarded
    def on_retry(self, *, delay_secs: float, error_type: str) -> None:
        self._m.worker_retries.inc()
        self._m.worker_retry_backoff.observe(delay_secs)

    @guarded
    def on_retries_exhausted(self) -> None:
        self._m.worker_retries_exhausted.inc()

    @guarded
    def on_breaker_transition(self, worker: str, old: BreakerState, new: BreakerState) -> None:
        w = self._live.get(worker)
        if w is not None:
            self._m.worker_cb_state.labels(w).set(int(new))
            self._m.worker_cb_transitions.labels(w, old.label, new.label).inc()

    @guarded
    def on_health(self, worker: str, healthy: bool) -> None:
        w = self._live.get(worker)
        if w is not None:
            self._m.worker_health.labels(w).set(1 if healthy else 0)
            self._m.worker_cb_state.labels(w)  # the breaker gauge exists (0 = closed) from the first sighting

    @guarded
    def on_pool_changed(self, workers: list[str], *, source: str, change: str) -> None:
        self._m.worker_pool_size.set(len(workers))
        self._m.discovery_registrations.labels(source, change).inc()
        members = set(workers)
        for url in [u for u in self._live if u not in members]:
            self._drop(self._live.pop(url))
        for url in members.difference(self._live):
            self._live[url] = self._m.worker_label(url)

    def _drop(self, label: str) -> None:
        if label in self._live.values():  # "other", still shared by a registered worker
            return
        self._m.remove_worker(label)
        self._m.worker_label.forget(label)
        self._selection.forget(label)
        self._active.forget(label)
