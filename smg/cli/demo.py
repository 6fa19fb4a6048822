"""``smg demo``: the scripted worker and the gateway on loopback, with ready-to-paste curl commands."""

from __future__ import annotations

import json
import socket
import sys

import uvloop

from smg.cli.launch import serve
from smg.settings import HealthSettings, ServerSettings, Settings, WorkerSettings
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY

DEMO_MODEL = "mock-model"
DEFAULT_PORT = 30000


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _curl(url: str, *, stream: bool) -> str:
    body: dict[str, object] = {
        "model": DEMO_MODEL,
        "messages": [{"role": "user", "content": "Hello from smg"}],
    }
    if stream:
        body["stream"] = True
    flag = "-sN" if stream else "-s"
    return (
        f"curl {flag} {url}/v1/chat/completions -H 'Content-Type: application/json' -d '{json.dumps(body)}'"
    )


def run_demo(*, port: int | None) -> int:
    """Start the worker (child process) and the gateway (this process); stop both on Ctrl-C/SIGTERM."""
    if port is None:
        port = DEFAULT_PORT if _free(DEFAULT_PORT) else 0
    worker = spawn(
        [
            sys.executable,
            "-m",
            "smg.testing.worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--model",
            DEMO_MODEL,
        ]
    )
    try:
        worker_url = wait_for_line(worker, WORKER_READY, timeout=30)
        settings = Settings(
            server=ServerSettings(
                host="127.0.0.1", port=port, prometheus_host="127.0.0.1", prometheus_port=0
            ),
            workers=WorkerSettings(urls=(worker_url,), policy="round_robin"),
            health=HealthSettings(interval_secs=5.0),
        )

        def announce(url: str, metrics_url: str) -> None:
            print(
                f"smg demo is running\n"
                f"  gateway  {url}  (metrics {metrics_url})\n"
                f"  worker   {worker_url}  (scripted, model {DEMO_MODEL}, pid {worker.pid})\n\n"
                f"Try it:\n  {_curl(url, stream=False)}\n\n"
                f"Streaming:\n  {_curl(url, stream=True)}\n\n"
                f"Press Ctrl-C to stop.",
                flush=True,
            )

        uvloop.run(serve(settings, on_ready=announce))
    finally:
        stop(worker)
    print("smg demo stopped", flush=True)
    return 0
