"""Worker faults beyond a crash (test_worker_crashes_and_outages.py): a frozen worker (SIGSTOP past
the request timeout, then SIGCONT), a slow worker, and a flapping worker; each with real processes and
the gateway's /metrics."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from smg.testing.processes import spawn, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY
from tests._procs import CHAT, Procs, SideTraffic, chat, poll, stream_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

NO_PROBES = ("--health-check-interval-secs", "3600")
FAST_RETRY = ("--retry-initial-backoff-ms", "1", "--retry-max-backoff-ms", "5")


def _post(gw: str, body: dict[str, object]) -> tuple[int, str, str]:
    """(status, content or stream text, error code) of one chat request."""
    with httpx.Client(base_url=gw, timeout=30) as client:
        if body.get("stream"):
            with client.stream("POST", CHAT, json=body) as resp:
                raw = resp.read()
            if resp.status_code != 200:
                return resp.status_code, "", resp.json()["error"]["code"]
            text, error = stream_outcome(raw)
            return 200, text, error["code"] if error else ""
        resp = client.post(CHAT, json=body)
        if resp.status_code != 200:
            return resp.status_code, "", resp.json()["error"]["code"]
        return 200, resp.json()["choices"][0]["message"]["content"], ""


def _stats(worker_url: str) -> int:
    count: int = httpx.get(worker_url + "/_smg/stats", timeout=5).json()["chat_requests"]
    return count


def test_a_frozen_worker_is_timed_out_retried_elsewhere_broken_open_and_used_again_after_cont(
    procs: Procs,
) -> None:
    frozen, frozen_url = procs.worker()
    _, spare_url = procs.worker()
    gw = procs.gateway(
        "--worker-urls", frozen_url, spare_url, "--policy", "round_robin", "--request-timeout-secs", "1",
        "--cb-failure-threshold", "2", "--cb-success-threshold", "1", "--cb-timeout-duration-secs", "1",
        *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        with SideTraffic(gw.url) as side, ThreadPoolExecutor(6) as pool:
            bodies = [chat(f"r{i}", stream=i % 2 == 1) for i in range(6)]
            results = list(pool.map(lambda b: _post(gw.url, b), bodies))
        # Every request that met the frozen worker timed out before its first byte and was retried.
        assert results == [(200, f"echo: r{i}", "") for i in range(6)]
        side.assert_none_lost()
        assert gw.metric("smg_worker_errors_total", error_type="timeout") >= 2
        assert gw.metric("smg_worker_retries_total") >= 2
        assert gw.metric("smg_worker_retries_exhausted_total") == 0
        # Open (1), or already half_open (2) if the breaker's timeout has passed: not closed.
        assert gw.metric("smg_worker_cb_state", worker=frozen_url) in (1, 2)
        assert gw.metric("smg_worker_cb_transitions_total", worker=frozen_url, to="open") >= 1
    finally:
        os.kill(frozen.pid, signal.SIGCONT)

    # After the breaker's timeout a trial request reaches the thawed worker and closes the breaker.
    def closed_again() -> bool:
        _post(gw.url, chat("probe"))
        return gw.metric("smg_worker_cb_state", worker=frozen_url) == 0

    before = _stats(frozen_url)
    poll(closed_again, timeout=20, interval=0.2)
    assert _stats(frozen_url) > before
    assert gw.metric("smg_worker_cb_transitions_total", worker=frozen_url, to="closed") >= 1
    assert [_post(gw.url, chat(f"after {i}"))[0] for i in range(4)] == [200] * 4


def test_a_slow_worker_within_the_timeout_is_waited_for_and_not_retried(procs: Procs) -> None:
    _, slow_url = procs.worker("--delay-ms", "300", "--chunk-delay-ms", "100")
    _, fast_url = procs.worker()
    gw = procs.gateway(
        "--worker-urls", slow_url, fast_url, "--policy", "round_robin", "--request-timeout-secs", "1",
        *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    # A stream of 25 words at 100 ms per event lasts longer than the 1 s request timeout, which bounds
    # each read of a stream, not its whole length.
    long_text = " ".join(f"w{i}" for i in range(25))
    with SideTraffic(gw.url) as side, ThreadPoolExecutor(4) as pool:
        bodies = [chat(long_text, stream=True), chat(long_text, stream=True), chat("a"), chat("b")]
        results = list(pool.map(lambda b: _post(gw.url, b), bodies))
    expected = f"echo: {long_text}"
    assert results == [(200, expected, ""), (200, expected, ""), (200, "echo: a", ""), (200, "echo: b", "")]
    side.assert_none_lost()
    assert gw.metric("smg_worker_retries_total") == 0
    assert gw.metric("smg_worker_errors_total") == 0
    assert gw.metric("smg_worker_cb_state", worker=slow_url) == 0
    assert _stats(slow_url) >= 2


def test_a_worker_slower_than_the_timeout_gives_504_when_it_is_the_only_one(procs: Procs) -> None:
    _, slow_url = procs.worker("--delay-ms", "1500")
    _, other_url = procs.worker("--model", "other-model")
    gw = procs.gateway(
        "--worker-urls", slow_url, other_url, "--request-timeout-secs", "0.5", "--retry-max-retries", "2",
        *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    with SideTraffic(gw.url, model="other-model") as side:
        for stream in (False, True):
            resp = httpx.post(gw.url + CHAT, json=chat("late", stream=stream), timeout=30)
            assert resp.status_code == 504
            assert resp.json()["error"]["code"] == "upstream_timeout"
            assert resp.headers["x-smg-error-code"] == "upstream_timeout"
    side.assert_none_lost()
    assert gw.metric("smg_worker_retries_exhausted_total") == 2
    assert gw.metric("smg_worker_errors_total", error_type="timeout") == 4
    assert _stats(slow_url) == 4  # two attempts per request, nothing more


def _flap(worker_url: str, stop: threading.Event, toggles: list[int]) -> None:
    with httpx.Client(timeout=5) as client:
        down = False
        while not stop.wait(0.05):
            down = not down
            client.post(worker_url + "/_smg/faults", json={"status": 503} if down else {"reset": True})
            toggles.append(1)
        client.post(worker_url + "/_smg/faults", json={"reset": True})


def test_a_flapping_worker_is_hidden_by_retries_and_its_breaker_opens_and_closes(procs: Procs) -> None:
    _, flapping_url = procs.worker()
    _, steady_url = procs.worker()
    gw = procs.gateway(
        "--worker-urls", flapping_url, steady_url, "--policy", "round_robin",
        "--cb-failure-threshold", "2", "--cb-success-threshold", "1", "--cb-timeout-duration-secs", "0.2",
        *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    stop, toggles = threading.Event(), list[int]()
    flapper = threading.Thread(target=_flap, args=(flapping_url, stop, toggles), daemon=True)
    flapper.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            bodies = [chat(f"f{i}", stream=i % 3 == 0) for i in range(240)]
            results = list(pool.map(lambda b: _post(gw.url, b), bodies))
    finally:
        stop.set()
        flapper.join(10)
    assert len(toggles) >= 4
    assert results == [(200, f"echo: f{i}", "") for i in range(240)]
    assert gw.metric("smg_worker_errors_total", error_type="status_503") >= 1
    assert gw.metric("smg_worker_retries_total") >= 1
    assert gw.metric("smg_worker_retries_exhausted_total") == 0
    assert gw.metric("smg_worker_cb_state", worker=steady_url) == 0
    transitions = {
        to: gw.metric("smg_worker_cb_transitions_total", worker=flapping_url, to=to)
        for to in ("open", "half_open", "closed")
    }
    assert transitions["open"] >= 1 and transitions["half_open"] >= 1, transitions


def test_a_worker_process_going_up_and_down_loses_no_non_streaming_request(procs: Procs) -> None:
    flapping, flapping_url = procs.worker()
    port = int(flapping_url.rsplit(":", 1)[1])
    _, steady_url = procs.worker()
    gw = procs.gateway(
        "--worker-urls", flapping_url, steady_url, "--policy", "round_robin",
        "--cb-failure-threshold", "1", "--cb-success-threshold", "1", "--cb-timeout-duration-secs", "0.2",
        *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    with SideTraffic(gw.url) as side:
        for _ in range(3):
            os.kill(flapping.pid, signal.SIGKILL)
            flapping.wait(10)
            flapping, _ = procs.worker(port=port)
            poll(lambda: _post(gw.url, chat("x"))[0] == 200 and _stats(flapping_url) > 0, timeout=20)
    side.assert_none_lost()
    assert gw.metric("smg_worker_errors_total") >= 1
    assert gw.metric("smg_worker_retries_exhausted_total") == 0


def test_a_worker_frozen_mid_stream_ends_that_stream_with_an_error_event_and_done(procs: Procs) -> None:
    frozen, frozen_url = procs.worker("--model", "slow-model", "--chunk-delay-ms", "100")
    _, spare_url = procs.worker()
    gw = procs.gateway(
        "--worker-urls", frozen_url, spare_url, "--request-timeout-secs", "1", *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    long_text = " ".join(f"w{i}" for i in range(50))
    try:
        with (
            SideTraffic(gw.url) as side,
            httpx.Client(base_url=gw.url, timeout=30) as client,
            client.stream("POST", CHAT, json=chat(long_text, model="slow-model", stream=True)) as resp,
        ):
            assert resp.status_code == 200
            chunks = resp.iter_bytes()
            first = next(chunks)
            os.kill(frozen.pid, signal.SIGSTOP)
            rest = b"".join(chunks)  # ends once a read has waited longer than the request timeout
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    side.assert_none_lost()
    text, error = stream_outcome(first + rest)
    assert error is not None and error["code"] == "upstream_timeout", error
    assert long_text.startswith(text.removeprefix("echo: ")) and len(text) < len(f"echo: {long_text}")
    assert _stats(frozen_url) == 1  # bytes had reached the client: never retried
    assert gw.metric("smg_worker_retries_total") == 0


GARBAGE = [b"this is not JSON", b'{"choices": "nope"}', b'{"choices": [1]}', b'{"choices": [{}]}', b"[]"]


def test_a_worker_answering_garbage_fails_a_tool_loop_and_a_stream_with_502_and_never_a_500(
    procs: Procs, tmp_path: Path
) -> None:
    garbage = spawn(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "fixtures" / "garbage_worker.py")]
    )
    procs.started.append(garbage)
    worker_url = wait_for_line(garbage, WORKER_READY)
    config = tmp_path / "mcp.yaml"
    server = {"name": "local", "protocol": "stdio", "command": sys.executable,
              "args": ["-m", "mcp_servers.faults", "--transport", "stdio"]}  # fmt: skip
    config.write_text(json.dumps({"servers": [server]}))
    gw = procs.gateway(
        "--worker-urls", worker_url, "--mcp-config-path", str(config),
        "--mcp-registry", str(tmp_path / "registry.db"), *FAST_RETRY, *NO_PROBES,
    )  # fmt: skip
    loop = chat("hi", tools=[{"type": "mcp", "server_label": "local", "require_approval": "never"}])
    for body in GARBAGE:
        httpx.post(worker_url + "/_reply", content=body, timeout=5).raise_for_status()
        # Without MCP tools the reply is forwarded byte for byte; in a tool loop the gateway reads it.
        passed = httpx.post(gw.url + CHAT, json=chat("hi"), timeout=30)
        assert (passed.status_code, passed.content) == (200, body)
        # A stream request answered with a JSON reply is refused before the client gets a byte.
        streamed = httpx.post(gw.url + CHAT, json=chat("hi", stream=True), timeout=30)
        assert streamed.status_code == 502, streamed.text
        assert streamed.json()["error"]["code"] == "upstream_protocol_error"
        resp = poll(lambda: _tool_loop_answer(gw.url, loop), timeout=30)
        assert resp.status_code == 502, (body, resp.text)
        assert resp.json()["error"]["code"] == "upstream_protocol_error"
    assert gw.metric("smg_http_responses_total", status_code="500") == 0


def _tool_loop_answer(gw: str, body: dict[str, object]) -> httpx.Response | None:
    """The answer once the stdio server is connected (before that the request has no MCP tools)."""
    resp = httpx.post(gw + CHAT, json=body, timeout=30)
    return resp if resp.status_code != 200 else None
