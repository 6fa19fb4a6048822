"""MCP tool-call and tool-loop figures for smg: what the gateway adds over calling the server directly.

- per call: p50 of sequential `echo` calls with an `mcp.Client` straight to the `faults` server, against
  the same call through the gateway's admin endpoint `POST /mcp/servers/{name}/tools/{tool}/call`
  (streamable HTTP and stdio), interleaved with `GET /mcp/servers` (the hop alone); the gateway's own
  measured call duration against the direct call is what a tool-loop call costs over a direct one;
- parallel: one tool-loop round of 4 `sleep(0.1)` calls against a round of one (scripted worker);
- three rounds: a loop of 3 `echo` rounds (4 model calls), minus the worker's and the tools' own time, as
  a chat request and as a Responses request (`POST /v1/responses` with an `mcp` tool, stored and with
  `store: false`), interleaved; with the gateway's CPU time per loop request of each.

Run alone: `python -m bench.toolloop [--smoke]` (prints the figures as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from mcp import Client, StdioServerParameters

from bench.procs import process_cpu_seconds, start, stop_proc

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]

__all__ = ["measure"]

REPO = Path(__file__).resolve().parent.parent
FAULTS = [sys.executable, "-m", "mcp_servers.faults", "--transport"]


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def _timed_call(http: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    async with http.post(url, json={"arguments": {"text": "ping"}}) as resp:
        body = await resp.json()
    took = time.perf_counter() - t0
    if resp.status != 200 or body.get("status") != "ok":
        raise RuntimeError(f"admin tool call failed: {resp.status} {body}")
    return took, float(body["duration"])


async def _timed_hop(http: aiohttp.ClientSession, url: str) -> float:
    t0 = time.perf_counter()
    async with http.get(url) as resp:
        await resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {url} failed: {resp.status}")
    return time.perf_counter() - t0


async def _per_call(
    client: Client, http: aiohttp.ClientSession, gateway: str, server: str, n: int
) -> dict[str, float]:
    """Interleaved samples (so a drift of the machine hits each alike): a direct `echo` call on the
    ``client`` session, the same call through the gateway, and the gateway's hop alone (a `GET
    /mcp/servers`: same edge, auth, routing and JSON answer, no MCP traffic)."""
    call_url, hop_url = f"{gateway}/mcp/servers/{server}/tools/echo/call", f"{gateway}/mcp/servers"
    direct, through, inside, hop = [], [], [], []
    for i in range(n + 3):  # the first 3 rounds warm up
        t0 = time.perf_counter()
        result = await client.call_tool("echo", {"text": "ping"})
        took = time.perf_counter() - t0
        if result.is_error:
            raise RuntimeError(f"direct echo failed: {result}")
        via, own = await _timed_call(http, call_url)
        bare = await _timed_hop(http, hop_url)
        if i >= 3:
            direct.append(took)
            through.append(via)
            inside.append(own)
            hop.append(bare)
    out = {"direct_ms": _ms(direct), "gateway_ms": _ms(through), "inside_ms": _ms(inside), "hop_ms": _ms(hop)}
    out["overhead_ms"] = out["gateway_ms"] - out["direct_ms"]
    out["client_overhead_ms"] = out["inside_ms"] - out["direct_ms"]  # what a tool-loop call pays
    return out


def _mcp_tool(tool: str) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "fhttp", "allowed_tools": [tool], "require_approval": "never"}


def _chat(tool: str, script: str, *, function_tools: bool = False) -> dict[str, Any]:
    tools: list[dict[str, Any]]
    if function_tools:  # what the gateway offers the worker (for timing the worker alone)
        params = {"type": "object", "properties": {"text": {"type": "string"}}}
        tools = [{"type": "function", "function": {"name": f"fhttp__{tool}", "parameters": params}}]
    else:
        tools = [_mcp_tool(tool)]
    return {"model": "mock-model", "messages": [{"role": "user", "content": script}], "tools": tools}


async def _timed_chat(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], reps: int
) -> tuple[float, Any]:
    samples, last = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        async with http.post(url, json=body) as resp:
            last = await resp.json()
        samples.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise RuntimeError(f"chat failed: {resp.status} {last}")
    return _ms(samples), last


async def _cpu_timed(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], pid: int
) -> tuple[float, float, Any]:
    """(wall ms, the gateway process's CPU seconds, answer) of one request (its stdio MCP server, a
    child, is idle meanwhile: the loops call `fhttp`)."""
    cpu0 = process_cpu_seconds(pid)
    took, answer = await _timed_chat(http, url, body, 1)
    return took, process_cpu_seconds(pid) - cpu0, answer


async def _three_rounds(
    http: aiohttp.ClientSession, client: Client, gateway: str, pid: int, worker: str, script: str, reps: int
) -> dict[str, dict[str, float]]:
    """Interleaved samples: the 3-round loop through the gateway as a chat request and as a Responses
    request (stored, the default, and with `store: false`), one model call straight to the worker (the
    same script, the gateway's function tools), one direct `echo` call. Per kind: wall times, and the
    gateway's CPU time per loop request (its CPU time over that kind's requests, which were served one at
    a time, divided by their number)."""
    responses = {"model": "mock-model", "input": script, "tools": [_mcp_tool("echo")]}
    bodies = {
        "chat": (f"{gateway}/v1/chat/completions", _chat("echo", script)),
        "responses": (f"{gateway}/v1/responses", responses),
        "responses_nostore": (f"{gateway}/v1/responses", responses | {"store": False}),
    }
    worker_body = _chat("echo", script, function_tools=True)
    loops: dict[str, list[float]] = {k: [] for k in bodies}
    cpu: dict[str, float] = dict.fromkeys(bodies, 0.0)
    calls, echoes = [], []
    for i in range(reps + 2):  # the first 2 rounds warm up
        order = list(bodies)[i % 3 :] + list(bodies)[: i % 3]  # each kind first in turn
        for kind in order:
            url, body = bodies[kind]
            took, spent, answer = await _cpu_timed(http, url, body, pid)
            (_check_loop if kind == "chat" else _check_responses_loop)(answer, 3, 4)
            if i >= 2:
                loops[kind].append(took / 1000)  # _timed_chat gives milliseconds
                cpu[kind] += spent
        call, _ = await _timed_chat(http, f"{worker}/v1/chat/completions", worker_body, 1)
        t0 = time.perf_counter()
        await client.call_tool("echo", {"text": "a"})
        if i >= 2:
            echoes.append(time.perf_counter() - t0)
            calls.append(call / 1000)
    worker_call, tools = _ms(calls), 3 * _ms(echoes)
    out = {}
    for kind, samples in loops.items():
        loop = _ms(samples)
        out[kind] = {
            "loop_ms": loop,
            "worker_call_ms": worker_call,
            "worker_ms": 4 * worker_call,
            "tools_ms": tools,
            "added_ms": loop - 4 * worker_call - tools,
            "cpu_ms": cpu[kind] / len(samples) * 1000,
        }
    return out


def _check_loop(answer: Any, calls: int, iterations: int) -> None:
    ext = answer.get("smg") or {}
    done = [c for c in ext.get("tool_calls", []) if c.get("status") == "ok"]
    if len(done) != calls or ext.get("iterations") != iterations:
        raise RuntimeError(f"the tool loop did not run as scripted: {ext}")


def _check_responses_loop(answer: Any, calls: int, iterations: int) -> None:
    """A Responses answer of a loop that ran as scripted: completed, the server listed once, ``calls``
    completed `mcp_call` items, a final message."""
    _check_loop(answer, calls, iterations)
    kinds = [item["type"] for item in answer.get("output", [])]
    done = [i for i in answer["output"] if i["type"] == "mcp_call" and i.get("status") == "completed"]
    if answer.get("status") != "completed" or kinds.count("mcp_list_tools") != 1 or len(done) != calls:
        raise RuntimeError(f"the Responses tool loop did not run as scripted: {kinds} {answer.get('status')}")
    if kinds[-1] != "message":
        raise RuntimeError(f"the Responses tool loop ended without a message: {kinds}")


async def _measure(gateway: str, pid: int, worker: str, http_url: str, smoke: bool) -> dict[str, Any]:
    n, reps = (20, 2) if smoke else (200, 5)
    out: dict[str, Any] = {}
    stdio = StdioServerParameters(command=FAULTS[0], args=[*FAULTS[1:], "stdio"], cwd=str(REPO))
    timeout = aiohttp.ClientTimeout(total=30)
    async with asyncio.timeout(240), aiohttp.ClientSession(timeout=timeout) as http:
        for key, target, server in (("http", http_url, "fhttp"), ("stdio", stdio, "fstdio")):
            async with Client(target) as client:
                out[key] = await _per_call(client, http, gateway, server, n)
        chat = f"{gateway}/v1/chat/completions"
        sleeps = [f'CALL fhttp__sleep {{"seconds": 0.1, "label": "{i}"}}' for i in range(4)]
        one, a1 = await _timed_chat(http, chat, _chat("sleep", sleeps[0]), reps)
        four, a4 = await _timed_chat(http, chat, _chat("sleep", "\n".join(sleeps)), reps)
        _check_loop(a1, 1, 2)
        _check_loop(a4, 4, 2)
        out["parallel"] = {"one_ms": one, "four_ms": four, "ratio": four / one}
        script = "\n".join(f'CALL fhttp__echo {{"text": "{x}"}}\nNEXT' for x in "abc")
        rounds = 5 if smoke else 60
        async with Client(http_url) as client:
            loops = await _three_rounds(http, client, gateway, pid, worker, script, rounds)
        out["three_rounds"] = loops["chat"]
        out["three_rounds_responses"] = loops["responses"]
        out["three_rounds_responses_nostore"] = loops["responses_nostore"]
    return out


def measure(*, smoke: bool, gw_core: int | None, logdir: Path) -> dict[str, Any]:
    """Start the faults server (HTTP), a scripted worker and smg with both faults transports; measure."""
    load_core = 0 if gw_core is not None else None
    faults = start(
        "faults",
        [*FAULTS, "streamable-http", "--port", "0"],
        core=load_core,
        ready_prefix="MCP_SERVER_READY",
        log=logdir / "faults.log",
    )
    procs = [faults]
    try:
        worker_args = [sys.executable, "-m", "smg.testing.worker", "--port", "0"]
        worker = start(
            "worker",
            worker_args,
            core=load_core,
            ready_prefix="SMG_WORKER_READY",
            log=logdir / "scripted-worker.log",
        )
        procs.append(worker)
        config = logdir / "mcp.yaml"
        config.write_text(
            "servers:\n"
            f"  - {{name: fhttp, protocol: streamable, url: '{faults.url}'}}\n"
            f"  - name: fstdio\n    protocol: stdio\n    command: {FAULTS[0]}\n"
            f"    args: [{', '.join(FAULTS[1:])}, stdio]\n"
        )
        args = [
            sys.executable,
            "-m",
            "smg",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--worker-urls",
            worker.url,
        ]
        args += ["--prometheus-port", "0", "--log-level", "warning", "--mcp-config-path", str(config)]
        gateway = start(
            "smg-mcp", args, core=gw_core, ready_prefix="smg listening on", log=logdir / "smg-mcp.log"
        )
        procs.append(gateway)
        # the gateway runs on uvloop when it is installed: so does the direct client, for a fair comparison
        runner: Any = asyncio.run if uvloop is None else uvloop.run
        coro = _measure(gateway.url, gateway.pid, worker.url, faults.url, smoke)
        return runner(coro)  # type: ignore[no-any-return]
    finally:
        for proc in reversed(procs):
            stop_proc(proc)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.toolloop", description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--logs", type=Path, default=Path("/tmp"))
    a = p.parse_args()
    os.chdir(REPO)
    print(json.dumps(measure(smoke=a.smoke, gw_core=None, logdir=a.logs), indent=1))


if __name__ == "__main__":
    main()
