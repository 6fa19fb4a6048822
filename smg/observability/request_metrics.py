"""`HttpMetrics` and `RouterMetrics`: the observers every request runs, recorded as the ``smg_http_*`` and
``smg_router_*`` families.

Their hooks write through the updaters of `smg.observability.cells`, kept per label tuple and, for the
end of a request and of a route, per argument tuple (so those derive no labels again); children are made
in the order the public API made them, only when they get a value. Each hook carries its guard inline
(`smg.observability.guard.HOOK_FAILED`): telemetry never breaks a request.
"""

from __future__ import annotations

import logging

from smg.observability.cells import Update, counter_add, gauge_add, gauge_set, histogram_observe
from smg.observability.guard import HOOK_FAILED, Children, guarded
from smg.observability.metrics import Metrics

# The methods of RFC 9110 and PATCH (RFC 5789) keep their name as the `method` label; any other token a
# client sends (WebDAV's PROPFIND, made-up ones) is `other`. The label is recorded before authentication.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_CAP = 4096  # entries of a cache of updaters keyed by a hook's arguments (their values are bounded)

log = logging.getLogger("smg.observability")  # the telemetry guard's, as `guarded` logs


class HttpMetrics:
    """`smg.api.middleware.HttpObserver`, the admission's and the key ring's observer, backed by
    Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._connections = gauge_add(metrics.http_connections)
        self._queued = gauge_set(metrics.admission_queue_depth)
        self._inflight = gauge_set(metrics.admission_inflight)
        self._requests = Children(metrics.http_requests, counter_add)
        self._duration = Children(metrics.http_duration, histogram_observe)
        self._responses = Children(metrics.http_responses, counter_add)
        self._decisions = Children(metrics.http_rate_limit, counter_add)
        self._keys = Children(metrics.http_key_rate_limit, counter_add)
        # (method label, route, status, error code) -> updaters of its requests, duration and responses
        self._ends: dict[tuple[str, str, int, str], tuple[Update, Update, Update]] = {}

    def on_start(self) -> None:
        try:
            self._connections(1.0)
        except Exception:  # the telemetry guard: a metrics bug must never fail a request
            log.exception(HOOK_FAILED, "on_start")

    def on_end(self, *, method: str, path: str, status: int, error_code: str, duration: float) -> None:
        try:
            self._connections(-1.0)
            if method not in HTTP_METHODS:
                method = "other"
            key = (method, path, status, error_code)
            requests, seconds, responses = self._ends.get(key) or self._end_updaters(key)
            requests(1.0)
            seconds(duration)
            responses(1.0)
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_end")

    def _end_updaters(self, key: tuple[str, str, int, str]) -> tuple[Update, Update, Update]:
        method, path, status, error_code = key
        path = self._m.path_label(path)  # a route's label value never changes once given
        if len(self._ends) >= _CAP:
            self._ends.clear()
        updaters = self._requests(method, path), self._duration(method, path)
        found = self._ends[key] = (*updaters, self._responses(path, str(status), error_code))
        return found

    def on_admission(self, decision: str) -> None:
        try:
            self._decisions(decision)(1.0)
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_admission")

    @guarded
    def on_rate_limited(self, key: str) -> None:
        """`smg.keys.ring.KeyObserver`: a request over its key's ``rpm`` (``key``: the key's name, never
        the key)."""
        self._decisions("rpm_rejected")(1.0)
        self._keys(self._m.key_label(key))(1.0)

    def on_queue(self, *, queued: int, inflight: int) -> None:
        try:
            self._queued(queued)
            self._inflight(inflight)
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_queue")


class RouterMetrics:
    """`smg.routing.chat.RouterObserver` backed by Prometheus metrics (HTTP router; ``endpoint`` is the
    label of the routes it records: ``chat`` or ``responses``)."""

    def __init__(self, metrics: Metrics, *, endpoint: str = "chat") -> None:
        self._m = metrics
        self._endpoint = endpoint
        self._requests = Children(metrics.router_requests, counter_add)
        self._duration = Children(metrics.router_duration, histogram_observe)
        self._errors = Children(metrics.router_errors, counter_add)
        self._stages = Children(metrics.router_stage, histogram_observe)
        self._ttft = Children(metrics.router_ttft, histogram_observe)
        self._tpot = Children(metrics.router_tpot, histogram_observe)
        self._tokens = Children(metrics.router_tokens, counter_add)
        # Keyed by what the hook is given; a model's label value never changes once given, and a model
        # nobody serves (no label) is not kept.
        self._routed: dict[tuple[str, bool, str | None], tuple[Update, Update, Update | None]] = {}

    def on_routed(self, model: str, *, streaming: bool, duration: float, error_code: str | None) -> None:
        try:
            key = (model, streaming, error_code)
            updaters = self._routed.get(key) or self._routed_updaters(key)
            if updaters is None:  # no worker serves it: not routed
                return
            requests, seconds, errors = updaters
            requests(1.0)
            seconds(duration)
            if errors is not None:
                errors(1.0)
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_routed")

    def _routed_updaters(
        self, key: tuple[str, bool, str | None]
    ) -> tuple[Update, Update, Update | None] | None:
        model, streaming, error_code = key
        m = self._m
        model_label = m.model_label(model)
        if model_label is None or error_code == "model_not_found":
            return None
        labels = ("http", model_label, self._endpoint, "true" if streaming else "false")
        requests, seconds = self._requests(*labels), self._duration(*labels)
        errors = None if error_code is None else self._errors(*labels, m.error_label(error_code))
        if len(self._routed) >= _CAP:
            self._routed.clear()
        found = self._routed[key] = (requests, seconds, errors)
        return found

    def on_generation(
        self, model: str, *, ttft: float | None, tpot: float | None, tokens: tuple[int, int] | None
    ) -> None:
        try:
            label = self._m.model_label(model)
            if label is None:  # the worker that answered was removed since: keep labels bounded
                return
            # A child is made only when it has a value to record: making it adds its series.
            if ttft is not None:
                self._ttft(label)(ttft)
            if tpot is not None:
                self._tpot(label)(tpot)
            if tokens is not None:
                _count(self._tokens(label, "input"), tokens[0])
                _count(self._tokens(label, "output"), tokens[1])
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_generation")

    def on_stage(self, stage: str, duration: float) -> None:
        try:
            self._stages(stage)(duration)
        except Exception:  # the telemetry guard
            log.exception(HOOK_FAILED, "on_stage")


def _count(add: Update, amount: int) -> None:
    if amount < 0:  # as Counter.inc refuses it (a worker's usage is not trusted)
        raise ValueError("counters can only be incremented by non-negative amounts")
    add(amount)
