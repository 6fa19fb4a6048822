"""``smg demo``: the scripted worker, the gateway and the bundled MCP servers (clock, calc, notes) on
loopback, with ready-to-paste curl commands for a plain answer and a multi-round tool loop."""

from __future__ import annotations

import json
import socket
import sys
import tempfile
from pathlib import Path

import uvloop
import yaml

from smg.observability.logs import configure_logging
from smg.serving.server import serve
from smg.settings import HealthSettings, McpSettings, ServerSettings, Settings, WorkerSettings
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY

DEMO_MODEL = "mock-model"
DEFAULT_PORT = 30000
DEMO_SERVERS = ("clock", "calc", "notes")
# The scripted worker calls the tools these lines name (see smg/testing/worker_script.py).
LOOP_SCRIPT = "\n".join(
    [
        'CALL clock__now {"timezone": "Asia/Tokyo"}',
        'CALL calc__evaluate {"expression": "6*7"}',
        "NEXT",
        'CALL notes__add {"text": "6*7 is 42"}',
    ]
)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _curl(url: str, text: str, *, stream: bool, mcp: bool) -> str:
    body: dict[str, object] = {"model": DEMO_MODEL, "messages": [{"role": "user", "content": text}]}
    if mcp:
        body["tools"] = [{"type": "mcp", "server_label": name} for name in DEMO_SERVERS]
    if stream:
        body["stream"] = True
    flag = "-sN" if stream else "-s"
    return (
        f"curl {flag} {url}/v1/chat/completions -H 'Content-Type: application/json' -d '{json.dumps(body)}'"
    )


def demo_mcp_config(directory: Path) -> Path:
    """Write the YAML config of the demo's MCP servers (stdio children of the gateway) into ``directory``."""
    servers = []
    for name in DEMO_SERVERS:
        args = ["-m", f"mcp_servers.{name}", "--transport", "stdio"]
        if name == "notes":
            args += ["--db", str(directory / "notes.db")]
        servers.append({"name": name, "protocol": "stdio", "command": sys.executable, "args": args})
    path = directory / "mcp.yaml"
    path.write_text(yaml.safe_dump({"servers": servers}))
    return path


def run_demo(*, port: int | None, log_level: str = "warn") -> int:
    """Start the worker (child process), the gateway and its MCP servers; stop all on Ctrl-C/SIGTERM.
    The gateway logs to stderr at ``log_level``, as ``smg launch`` does (`configure_logging`)."""
    configure_logging(log_level)
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
        with tempfile.TemporaryDirectory(prefix="smg-demo-") as tmp:
            worker_url = wait_for_line(worker, WORKER_READY, timeout=30)
            settings = Settings(
                server=ServerSettings(
                    host="127.0.0.1", port=port, prometheus_host="127.0.0.1", prometheus_port=0
                ),
                workers=WorkerSettings(urls=(worker_url,), policy="round_robin"),
                health=HealthSettings(interval_secs=5.0),
                mcp=McpSettings(
                    registry_path=str(Path(tmp) / "registry.db"), config_path=str(demo_mcp_config(Path(tmp)))
                ),
            )

            def announce(url: str, metrics_url: str) -> None:
                print(
                    f"smg demo is running\n"
                    f"  gateway  {url}  (metrics {metrics_url})\n"
                    f"  worker   {worker_url}  (scripted, model {DEMO_MODEL}, pid {worker.pid})\n"
                    f"  mcp      {', '.join(DEMO_SERVERS)} (stdio children of the gateway)\n\n"
                    f"A plain answer:\n  {_curl(url, 'Hello from smg', stream=False, mcp=False)}\n\n"
                    f"A tool loop (two rounds of MCP calls, run by the gateway):\n"
                    f"  {_curl(url, LOOP_SCRIPT, stream=False, mcp=True)}\n\n"
                    f"The same loop, streamed:\n  {_curl(url, LOOP_SCRIPT, stream=True, mcp=True)}\n\n"
                    f"Press Ctrl-C to stop.",
                    flush=True,
                )

            uvloop.run(serve(settings, on_ready=announce))
    finally:
        stop(worker)
    print("smg demo stopped", flush=True)
    return 0
