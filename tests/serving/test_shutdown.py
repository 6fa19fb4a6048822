"""SIGTERM on a real gateway process: new connections are refused at once, requests in flight (a plain
stream and a streaming tool loop on a stdio MCP server) finish with [DONE], then the stdio child is
stopped and the process exits 0. Past the grace period in-flight requests are cancelled; the log of the
whole run carries no URL secret."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.cli.launch import READY_PREFIX
from smg.testing.processes import pid_alive, spawn, wait_for_line
from tests._procs import Procs, poll

pytestmark = pytest.mark.e2e


def _gateway(procs: Procs, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str, Path]:
    """A gateway process with its stderr in a file (returned), stopped by PID at teardown."""
    log = tmp_path / "gateway.log"
    with log.open("w") as err:
        proc = spawn(
            [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0",
             "--mcp-registry", str(tmp_path / "mcp.db"), *args],
            stderr=err.fileno(),
        )  # fmt: skip
    procs.started.append(proc)
    return proc, wait_for_line(proc, READY_PREFIX).split()[0], log


def _yaml(tmp_path: Path, servers: str) -> str:
    path = tmp_path / "mcp.yaml"
    path.write_text(f"servers:\n{servers}")
    return str(path)


CALC = f"""  - name: calc
    protocol: stdio
    command: {sys.executable}
    args: [-m, mcp_servers.calc, --transport, stdio]
"""


class _Stream:
    """One streaming chat request read to its end in a thread; ``first`` is set at its first bytes."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        self.first = threading.Event()
        self.done_at = 0.0
        self._url, self._body = url, body

    def run(self) -> bytes:
        out = b""
        with (
            httpx.Client(base_url=self._url, timeout=60) as client,
            client.stream("POST", "/v1/chat/completions", json=self._body) as resp,
        ):
            assert resp.status_code == 200, resp.read()
            for chunk in resp.iter_bytes():
                out += chunk
                self.first.set()
        self.done_at = time.monotonic()
        return out


def _refused(url: str) -> bool:
    """True once a new request is not served: its connection is refused, or (a connection the kernel
    accepted into the backlog just before the listening socket closed) dropped without an answer."""
    try:
        httpx.get(f"{url}/health", timeout=2)
    except (httpx.ConnectError, httpx.RemoteProtocolError):
        return True
    return False


def test_sigterm_drains_streams_and_tool_loops_then_stops_stdio_children_and_exits_0(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker("--chunk-delay-ms", "150")
    proc, url, log = _gateway(
        procs, tmp_path, "--worker-urls", worker, "--shutdown-grace-period-secs", "60",
        "--mcp-config-path", _yaml(tmp_path, CALC),
    )  # fmt: skip
    status = poll(lambda: httpx.get(f"{url}/mcp/servers", timeout=5).json()["servers"][0]["status"])
    child = poll(lambda: httpx.get(f"{url}/mcp/servers", timeout=5).json()["servers"][0]["status"]["pid"])
    assert status["state"] in ("connecting", "connected") and pid_alive(child)
    words = " ".join(f"w{i}" for i in range(30))
    plain = _Stream(
        url, {"model": "mock-model", "messages": [{"role": "user", "content": words}], "stream": True}
    )
    loop = _Stream(
        url,
        {"model": "mock-model", "stream": True,
         "messages": [{"role": "user", "content": 'CALL calc__evaluate {"expression": "6*7"}'}],
         "tools": [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]},
    )  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(plain.run), pool.submit(loop.run)]
        assert plain.first.wait(30) and loop.first.wait(30)
        proc.send_signal(signal.SIGTERM)
        poll(lambda: _refused(url), timeout=10, interval=0.02)
        refused_at = time.monotonic()
        plain_out, loop_out = (f.result(timeout=60) for f in futures)

    assert refused_at < plain.done_at and refused_at < loop.done_at  # refused while both were in flight
    assert plain_out.endswith(b"data: [DONE]\n\n") and b"w29" in plain_out
    assert loop_out.endswith(b"data: [DONE]\n\n") and b"42" in loop_out and b"error" not in loop_out
    assert proc.wait(timeout=30) == 0
    poll(lambda: not pid_alive(child), timeout=10)
    text = log.read_text()
    assert "shutting down: new connections are refused" in text and "stopped" in text


def test_requests_still_running_when_the_grace_period_ends_are_cancelled_and_the_process_exits_0(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker("--hang")
    proc, url, _ = _gateway(procs, tmp_path, "--worker-urls", worker, "--shutdown-grace-period-secs", "1")
    outcome: list[str] = []

    def hung_request() -> None:
        try:
            resp = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]},
                timeout=60,
            )
            outcome.append(str(resp.status_code))
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=hung_request)
    thread.start()
    poll(lambda: httpx.get(f"{worker}/_smg/stats", timeout=5).json()["chat_requests"] == 1)
    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=30) == 0
    thread.join(30)
    assert outcome and outcome[0] != "200"


def test_a_gateway_process_logs_no_url_secret_from_start_to_shutdown(procs: Procs, tmp_path: Path) -> None:
    _, worker = procs.worker()
    port = worker.rsplit(":", 1)[1]
    secret = f"http://bob:PASSWORD99@127.0.0.1:{port}/mcp?token=TOKEN12345"
    leaky = f"  - name: leaky\n    protocol: streamable\n    url: {secret}\n"
    proc, url, log = _gateway(
        procs, tmp_path, "--worker-urls", worker, "--log-level", "debug",
        "--mcp-config-path", _yaml(tmp_path, leaky),
    )  # fmt: skip
    check = poll(lambda: httpx.get(f"{url}/mcp/check", timeout=30).json()["servers"][0]["error"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

    text = log.read_text()
    assert "PASSWORD99" not in text and "TOKEN12345" not in text and "PASSWORD99" not in check
    assert f"http://bob:***@127.0.0.1:{port}/mcp?token=***" in text  # the URL was logged, redacted


def test_the_asgi_servers_own_log_lines_go_through_the_gateways_handler(procs: Procs, tmp_path: Path) -> None:
    # uvicorn logs a request it cannot parse itself ("Invalid HTTP request received."); with --log-json
    # that line must be JSON like every other, and pass the same URL-redacting filter.
    _, worker = procs.worker()
    args = ("--worker-urls", worker, "--log-json", "--log-level", "warning")
    proc, url, log = _gateway(procs, tmp_path, *args)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"NOT AN HTTP REQUEST \x00\x01\r\n\r\n")
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

    lines = [line for line in log.read_text().splitlines() if "Invalid HTTP request" in line]
    assert lines, log.read_text()[-2000:]
    for line in lines:
        record = json.loads(line)
        assert record["logger"].startswith("uvicorn") and "Invalid HTTP request" in record["message"]
