"""Real processes on 127.0.0.1 for the tests that start them, each started and stopped by its PID.

The ``procs`` fixture (registered for every test by ``pytest_plugins`` in tests/conftest.py) starts them
and stops whatever it started when the test ends, last started first:

- ``procs.worker(*args)``: ``python -m smg.testing.worker`` -> ``(process, url)``;
- ``procs.gateway(*args)``: ``python -m smg`` on free ports, its metrics listener included -> `Gateway`
  (``gw.proc``, ``gw.url``, ``gw.metrics_url``, ``gw.metric(name, **labels)``), which also unpacks as
  ``proc, url = procs.gateway(...)``;
- ``procs.mcp_faults()``: the ``faults`` MCP server over streamable HTTP -> ``(process, url)``.

The helpers below read what those processes serve: `poll` (bounded), `status_of`, chat bodies and SSE
events, and `SideTraffic` (plain requests in the background while a fault is in progress).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY

CHAT = "/v1/chat/completions"


@dataclass(frozen=True)
class Gateway:
    proc: subprocess.Popen[str]
    url: str
    metrics_url: str

    def __iter__(self) -> Iterator[Any]:
        """``proc, url = procs.gateway(...)``, for a test that reads no metric."""
        return iter((self.proc, self.url))

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there is none)."""
        text = httpx.get(self.metrics_url, timeout=10).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


@dataclass
class Procs:
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def worker(self, *args: str, port: int = 0) -> tuple[subprocess.Popen[str], str]:
        cmd = [sys.executable, "-m", "smg.testing.worker", "--host", "127.0.0.1", "--port", str(port), *args]
        proc = spawn(cmd)
        self.started.append(proc)
        return proc, wait_for_line(proc, WORKER_READY)

    def gateway(self, *args: str) -> Gateway:
        cmd = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0"]
        proc = spawn([*cmd, *args])
        self.started.append(proc)
        rest = wait_for_line(proc, GATEWAY_READY)  # "<url> (metrics <url>)"
        url, _, metrics = rest.partition(" (metrics ")
        return Gateway(proc=proc, url=url, metrics_url=metrics.rstrip(")"))

    def mcp_faults(self, port: int = 0) -> tuple[subprocess.Popen[str], str]:
        cmd = [sys.executable, "-m", "mcp_servers.faults", "--transport", "streamable-http"]
        cmd += ["--port", str(port)]
        proc = spawn(cmd, stderr=subprocess.DEVNULL)
        self.started.append(proc)
        return proc, wait_for_line(proc, "MCP_SERVER_READY")

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            stop(proc)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.stop_all()


def poll(check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns a truthy value; bounded by ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def status_of(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def chat(text: str, *, model: str = "mock-model", stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream, **extra}


def sse_events(raw: bytes) -> list[bytes]:
    """The data payloads of an SSE body, in order (comment lines, such as tool progress, are skipped)."""
    events = []
    for event in raw.split(b"\n\n"):
        data = [line.removeprefix(b"data: ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if data:
            events.append(b"\n".join(data))
    return events


def stream_outcome(raw: bytes) -> tuple[str, dict[str, Any] | None]:
    """("" or the text, the error object or None) of a finished chat stream; asserts it ends with [DONE]."""
    events = sse_events(raw)
    assert events and events[-1] == b"[DONE]", raw[-300:]
    text, error = "", None
    for event in events[:-1]:
        chunk = orjson.loads(event)
        if "error" in chunk:
            error = chunk["error"]
            continue
        for choice in chunk.get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return text, error


class SideTraffic:
    """Plain chat requests in a background thread while a fault is in progress; every answer is kept."""

    def __init__(self, gateway: str, *, model: str = "mock-model") -> None:
        self._gateway, self._model = gateway, model
        self._stop = threading.Event()
        self.answers: list[tuple[int, str]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._gateway, timeout=30) as client:
            i = 0
            while not self._stop.is_set() or i < 3:
                resp = client.post(CHAT, json=chat(f"side {i}", model=self._model))
                content = resp.json()["choices"][0]["message"]["content"] if resp.status_code == 200 else ""
                self.answers.append((resp.status_code, content))
                i += 1

    def __enter__(self) -> SideTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "side traffic did not finish within 60 s"

    def assert_none_lost(self) -> None:
        assert len(self.answers) >= 3
        assert self.answers == [(200, f"echo: side {i}") for i in range(len(self.answers))]
