"""Real processes on 127.0.0.1: scripted workers and gateways started by PID, stopped by PID."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY


class Procs:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def worker(self, *args: str, port: int = 0) -> tuple[subprocess.Popen[str], str]:
        proc = spawn(
            [sys.executable, "-m", "smg.testing.worker", "--host", "127.0.0.1", "--port", str(port), *args]
        )
        self.started.append(proc)
        return proc, wait_for_line(proc, WORKER_READY)

    def gateway(self, *args: str) -> tuple[subprocess.Popen[str], str]:
        cmd = [
            sys.executable,
            "-m",
            "smg",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--prometheus-port",
            "0",
            *args,
        ]
        proc = spawn(cmd)
        self.started.append(proc)
        return proc, wait_for_line(proc, GATEWAY_READY).split()[0]

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
