"""``--processes 2`` with a stdio MCP server: SIGTERM to the supervisor drains both serving processes
(streams in flight on each finish with [DONE]), stops every stdio child and exits 0; SIGKILL of the
supervisor leaves no serving process and no stdio child behind."""

from __future__ import annotations

import concurrent.futures
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.testing.processes import pid_alive
from tests._procs import CHAT, Procs, chat, poll
from tests.serving._process_tree import children, client_port, cmdline, descendants, holders, kill_all

pytestmark = pytest.mark.e2e

CALC = f"""servers:
  - name: calc
    protocol: stdio
    command: {sys.executable}
    args: [-m, mcp_servers.calc, --transport, stdio]
"""


def _stdio_children(supervisor: int) -> list[int]:
    return [pid for pid in descendants(supervisor) if "mcp_servers.calc" in cmdline(pid)]


class _Stream:
    """One streaming chat request read to its end in a thread; ``port`` is its connection's local
    port, set with ``first`` at its first bytes."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        self.first = threading.Event()
        self.port = 0
        self._url, self._body = url, body

    def run(self) -> bytes:
        out = b""
        with (
            httpx.Client(base_url=self._url, timeout=120) as client,
            client.stream("POST", CHAT, json=self._body) as resp,
        ):
            assert resp.status_code == 200, resp.read()
            self.port = client_port(resp)
            for chunk in resp.iter_bytes():
                out += chunk
                self.first.set()
        return out


def _gateway(procs: Procs, tmp_path: Path, *args: str) -> tuple[Any, list[int], list[int]]:
    """A --processes 2 gateway with the calc stdio server -> (gateway, serving PIDs, stdio PIDs)."""
    config = tmp_path / "mcp.yaml"
    config.write_text(CALC)
    registry = str(tmp_path / "mcp.db")
    gw = procs.gateway(
        "--processes", "2", "--mcp-config-path", str(config), "--mcp-registry", registry, *args
    )
    serving = children(gw.proc.pid)
    stdio = poll(lambda: (found := _stdio_children(gw.proc.pid)) and len(found) == 2 and found, timeout=60)
    return gw, serving, stdio


def test_sigterm_to_the_supervisor_drains_both_processes_and_stops_every_stdio_child(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker("--chunk-delay-ms", "100")
    gw, serving, stdio = _gateway(
        procs, tmp_path, "--worker-urls", worker, "--shutdown-grace-period-secs", "60"
    )
    port = int(gw.url.rsplit(":", 1)[1])
    words = " ".join(f"w{i}" for i in range(40))
    try:
        assert len(serving) == 2 and all(pid_alive(pid) for pid in stdio)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            streams: list[_Stream] = []
            futures = []
            held: set[int] = set()
            while held != set(serving):  # streams until each process holds one
                assert len(streams) < 16, f"16 streams, all on {held}"
                stream = _Stream(gw.url, chat(words, stream=True))
                futures.append(pool.submit(stream.run))
                assert stream.first.wait(30)
                streams.append(stream)
                held = set(holders([s.port for s in streams], port, serving).values())
            gw.proc.send_signal(signal.SIGTERM)
            outputs = [f.result(timeout=120) for f in futures]

        for out in outputs:
            assert out.endswith(b"data: [DONE]\n\n") and b"w39" in out
        assert gw.proc.wait(timeout=60) == 0
        poll(lambda: not any(pid_alive(pid) for pid in [*serving, *stdio]), timeout=15)
    finally:
        procs.stop_all()
        kill_all([*serving, *stdio])


def test_sigkill_of_the_supervisor_leaves_no_serving_process_and_no_stdio_child(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker()
    gw, serving, stdio = _gateway(procs, tmp_path, "--worker-urls", worker)
    # a killed supervisor cannot remove its metrics directory (documented): the test does
    environ = Path(f"/proc/{serving[0]}/environ").read_bytes().split(b"\0")
    (directory,) = (
        v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")
    )
    try:
        assert httpx.post(f"{gw.url}{CHAT}", json=chat("hi"), timeout=30).status_code == 200
        gw.proc.kill()
        gw.proc.wait(timeout=10)
        poll(lambda: not any(pid_alive(pid) for pid in [*serving, *stdio]), timeout=30)
    finally:
        procs.stop_all()
        kill_all([*serving, *stdio])
        shutil.rmtree(directory, ignore_errors=True)
