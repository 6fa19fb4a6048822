"""The telemetry guard: a metrics bug never fails a request. With every metric update failing, each hook a
request runs logs the failure instead of raising it, and chat requests are answered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, values

from smg.observability.metrics import Metrics
from smg.observability.observers import HttpMetrics, RouterMetrics, WorkerMetrics
from smg.testing.worker import RunningWorker
from tests.conftest import chat_body, make_settings

URL = "http://127.0.0.1:1"


@dataclass
class Observers:
    http: HttpMetrics
    router: RouterMetrics
    workers: WorkerMetrics


# Every telemetry hook a pass-through chat request runs (the HTTP edge, admission, worker, router), called
# with values its metrics do not hold yet.
REQUEST_HOOKS: dict[str, Callable[[Observers], None]] = {
    "on_start": lambda o: o.http.on_start(),
    "on_admission": lambda o: o.http.on_admission("allowed"),
    "on_queue": lambda o: o.http.on_queue(queued=2, inflight=3),
    "on_selected": lambda o: o.workers.on_selected("round_robin", URL, duration=0.001),
    "on_attempt": lambda o: o.workers.on_attempt(URL, active=4),
    "on_attempt_done": lambda o: o.workers.on_attempt_done(URL, active=5, error_type="status_5xx"),
    "on_stage": lambda o: o.router.on_stage("upstream", 0.01),
    "on_generation": lambda o: o.router.on_generation("mock-model", ttft=0.1, tpot=0.01, tokens=(5, 7)),
    "on_routed": lambda o: o.router.on_routed("mock-model", streaming=False, duration=0.2, error_code=None),
    "on_end": lambda o: o.http.on_end(
        method="POST", path="/v1/chat/completions", status=200, error_code="", duration=0.2
    ),
}


def _failed_hooks(caplog: pytest.LogCaptureFixture) -> set[object]:
    return {
        record.args[0]
        for record in caplog.records
        if record.msg == "telemetry hook %s failed" and isinstance(record.args, tuple)
    }


class MetricsBug:
    """Makes every update of a metric value fail once armed (before that, values update as usual, so
    the gateway starts with its pool known to the metrics)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        for name in ("inc", "set"):
            monkeypatch.setattr(values.MutexValue, name, self._breaking(getattr(values.MutexValue, name)))

    def _breaking(self, update: Callable[..., None]) -> Callable[..., None]:
        def broken(value: object, *args: Any, **kwargs: Any) -> None:
            if self.armed:
                raise RuntimeError("a metrics bug")
            update(value, *args, **kwargs)

        return broken


@pytest.mark.parametrize("hook", REQUEST_HOOKS)
def test_a_request_hook_logs_a_metrics_failure_instead_of_raising_it(
    hook: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bug = MetricsBug(monkeypatch)
    metrics = Metrics(CollectorRegistry())
    metrics.model_label.served_by(lambda model: model == "mock-model")
    observers = Observers(HttpMetrics(metrics), RouterMetrics(metrics), WorkerMetrics(metrics))
    observers.workers.on_pool_changed([URL], source="flags", change="added")
    bug.armed = True
    with caplog.at_level(logging.ERROR, logger="smg.observability"):
        REQUEST_HOOKS[hook](observers)
    assert _failed_hooks(caplog) == {hook}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_a_chat_request_is_answered_while_every_metric_update_fails(
    start_gateway: Callable[..., Any],
    worker: RunningWorker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    bug = MetricsBug(monkeypatch)
    gateway = await start_gateway(make_settings((worker.url,)))
    bug.armed = True
    with caplog.at_level(logging.ERROR, logger="smg.observability"):
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            for _ in range(2):
                answer = await client.post("/v1/chat/completions", json=chat_body(stream=stream))
                assert answer.status_code == 200
                assert (
                    answer.content.rstrip().endswith(b"data: [DONE]") if stream else answer.json()["choices"]
                )
    assert {"on_start", "on_selected", "on_routed", "on_end"} <= _failed_hooks(caplog)
