"""Gateway and workers as real processes: crashes, outages and recovery."""

from __future__ import annotations

import os
import signal
import threading

import httpx
import orjson
import pytest

from tests._procs import Procs, poll, status_of

FAST_HEALTH = (
    "--health-check-interval-secs",
    "0.1",
    "--health-failure-threshold",
    "1",
    "--health-success-threshold",
    "1",
    "--health-check-timeout-secs",
    "1",
)

pytestmark = pytest.mark.e2e


def _body(model: str, text: str, *, stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}


def test_worker_killed_mid_stream_ends_that_stream_cleanly_and_spares_others(procs: Procs) -> None:
    slow, slow_url = procs.worker("--model", "slow-model", "--chunk-delay-ms", "200")
    _, fast_url = procs.worker("--model", "mock-model")
    _, gw = procs.gateway("--worker-urls", slow_url, fast_url, "--policy", "round_robin")
    others: list[int] = []

    def side_traffic() -> None:
        with httpx.Client(base_url=gw, timeout=10) as c:
            for i in range(20):
                others.append(
                    c.post("/v1/chat/completions", json=_body("mock-model", f"side {i}")).status_code
                )

    long_text = " ".join(f"w{i}" for i in range(50))
    with (
        httpx.Client(base_url=gw, timeout=30) as c,
        c.stream("POST", "/v1/chat/completions", json=_body("slow-model", long_text, stream=True)) as resp,
    ):
        assert resp.status_code == 200
        chunks = resp.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"data: ")
        side = threading.Thread(target=side_traffic)
        side.start()
        os.kill(slow.pid, signal.SIGKILL)
        rest = b"".join(chunks)
        side.join(30)
    events = [e for e in (first + rest).split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    error = orjson.loads(events[-2].removeprefix(b"data: "))
    assert error["error"]["code"] in {"upstream_protocol_error", "upstream_unavailable"}
    assert others == [200] * 20


def test_all_workers_down_gives_503_and_both_recover_without_restart(procs: Procs) -> None:
    worker, url = procs.worker()
    port = url.rsplit(":", 1)[1]
    _, gw = procs.gateway("--worker-urls", url, *FAST_HEALTH)
    assert status_of(gw + "/readiness") == 200

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    poll(lambda: status_of(gw + "/readiness") == 503)
    ready = httpx.get(gw + "/readiness", timeout=5).json()
    assert ready["status"] == "not_ready" and ready["reason"]
    resp = httpx.post(gw + "/v1/chat/completions", json=_body("mock-model", "hi"), timeout=10)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "no_available_workers"
    assert resp.headers["x-smg-error-code"] == "no_available_workers"

    procs.worker(port=int(port))
    poll(lambda: status_of(gw + "/readiness") == 200)
    resp = httpx.post(gw + "/v1/chat/completions", json=_body("mock-model", "back"), timeout=10)
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "echo: back"


def test_gateway_sigterm_exits_cleanly(procs: Procs) -> None:
    _, url = procs.worker()
    gateway, gw = procs.gateway("--worker-urls", url)
    assert status_of(gw + "/health") == 200
    gateway.send_signal(signal.SIGTERM)
    assert gateway.wait(15) == 0
