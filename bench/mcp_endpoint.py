"""The gateway's MCP endpoint: what an MCP client's ``tools/call`` through ``/mcp`` costs over calling the
same server directly.

`mcp.Client` sessions over streamable HTTP, one to the ``faults`` server and, to the gateway, one to
``/mcp`` (which serves ``faults`` as ``faults__*``), one to ``/mcp/scoped/faults`` (both on the 2026-07-28
revision, the SDK's default) and one to ``/mcp`` on the handshake revision (``mode="legacy"``: a session,
as Claude Code and Cursor keep one), make sequential ``echo`` calls, interleaved so a drift of the
machine hits each alike. Per kind: p50 and p95 wall time
and, for the calls through the gateway, the gateway process's CPU time per call (its CPU clock read
around each call; nothing else runs in it meanwhile). The upstream server's CPU per call is the same for
both (it serves the gateway's pooled session as it serves the direct one), so it is left out.

Run: `python -m bench.mcp_endpoint [--smoke] [--calls N]` (prints the figures as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client

from bench.procs import process_cpu_seconds, start, stop_proc

__all__ = ["measure"]

REPO = Path(__file__).resolve().parent.parent
_WARMUP = 10


def _q(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _timed(client: Client, tool: str) -> float:
    t0 = time.perf_counter()
    result = await client.call_tool(tool, {"text": "ping"})
    took = time.perf_counter() - t0
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result}")
    return took


async def _measure(faults: str, gateway: str, pid: int, calls: int) -> dict[str, Any]:
    cpu: Callable[[], float] = lambda: process_cpu_seconds(pid)  # noqa: E731
    walls: dict[str, list[float]] = {"direct": [], "mcp": [], "scoped": [], "mcp_handshake": []}
    spent: dict[str, float] = {"mcp": 0.0, "scoped": 0.0, "mcp_handshake": 0.0}
    async with (
        Client(faults) as direct,
        Client(gateway + "/mcp") as aggregated,
        Client(gateway + "/mcp/scoped/faults") as scoped,
        Client(gateway + "/mcp", mode="legacy") as handshake,
    ):
        kinds = {
            "direct": (direct, "echo"),
            "mcp": (aggregated, "faults__echo"),
            "scoped": (scoped, "echo"),
            "mcp_handshake": (handshake, "faults__echo"),
        }
        for i in range(calls + _WARMUP):
            order = list(kinds)[i % 4 :] + list(kinds)[: i % 4]  # each kind first in turn
            for kind in order:
                client, tool = kinds[kind]
                before = cpu()
                took = await _timed(client, tool)
                if i >= _WARMUP:
                    walls[kind].append(took)
                    if kind in spent:
                        spent[kind] += cpu() - before
    direct_p50 = statistics.median(walls["direct"]) * 1000
    out: dict[str, Any] = {
        "calls": calls,
        "direct": {"p50_ms": direct_p50, "p95_ms": _q(walls["direct"], 0.95)},
    }
    for kind in spent:
        p50 = statistics.median(walls[kind]) * 1000
        out[kind] = {
            "p50_ms": p50,
            "p95_ms": _q(walls[kind], 0.95),
            "added_p50_ms": p50 - direct_p50,
            "gateway_cpu_us_per_call": spent[kind] / calls * 1e6,
        }
    return out


def measure(*, calls: int, logdir: Path) -> dict[str, Any]:
    """Start the faults server and a gateway serving it, measure, stop both."""
    faults_args = [
        sys.executable,
        "-m",
        "mcp_servers.faults",
        "--transport",
        "streamable-http",
        "--port",
        "0",
    ]
    faults = start(
        "faults", faults_args, core=None, ready_prefix="MCP_SERVER_READY", log=logdir / "faults.log"
    )
    procs = [faults]
    state = tempfile.TemporaryDirectory(prefix="smg-bench-mcp-endpoint-")
    try:
        args = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0"]
        args += ["--log-level", "warning", "--mcp-registry", str(Path(state.name) / "registry.db")]
        gateway = start("smg", args, core=None, ready_prefix="smg listening on", log=logdir / "smg-mcp.log")
        procs.append(gateway)
        spec = {"name": "faults", "transport": "streamable-http", "url": faults.url}
        request = urllib.request.Request(
            gateway.url + "/mcp/servers",
            data=json.dumps(spec).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            if resp.status != 201:
                raise RuntimeError(f"registering faults failed: {resp.status}")
        return asyncio.run(_measure(faults.url, gateway.url, gateway.pid, calls))
    finally:
        for proc in reversed(procs):
            stop_proc(proc)
        state.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.mcp_endpoint", description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="20 calls per kind instead of --calls")
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--logs", type=Path, default=Path("/tmp"))
    a = p.parse_args()
    os.chdir(REPO)
    print(json.dumps(measure(calls=20 if a.smoke else a.calls, logdir=a.logs), indent=1))


if __name__ == "__main__":
    main()
