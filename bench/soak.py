"""Soak test: many mixed requests against a real gateway with three scripted workers, one of them flapping.

    python -m bench.soak [--requests 10000] [--concurrency 64] [--out soak-results]

Starts, as real processes on 127.0.0.1: the `faults` MCP server over streamable HTTP, three scripted
workers and a gateway (which itself starts `faults` over stdio as its child). The mix is non-streaming
chat, streaming chat, tool loops (non-streaming and streaming, through both MCP servers) and streams
their client drops after the first bytes. While it
runs, one worker's fault switch flips every ``--flap-interval`` seconds between healthy, answering 503
and dropping streams after two events.

Every answer is checked: a 200 must carry exactly the expected text (a stream must parse and end with
``[DONE]``); anything else is an error. Errors the flapping worker explains (a stream it broke ends with
an ``upstream_protocol_error`` event, or retries ran out on 503s) are counted apart from unexplained
ones (malformed or truncated answers, wrong text, transport failures, other codes). The gateway's RSS,
open fds and child processes are read before and after; after everything is stopped, no process started
here (or by the gateway) may be alive. Writes ``soak.json`` and ``soak.md`` to ``--out``; exits 1 on any
unexplained loss or leaked process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families  # noqa: TID251  # reads, defines no metric

from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import pid_alive, spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY

CHAT = "/v1/chat/completions"
# Codes a client may see because of the flapping worker, and why.
FLAP_CODES = {
    "upstream_protocol_error": "a stream the flapping worker dropped after its first bytes",
    "upstream_unavailable": "the flapping worker's connection broke before an answer",
    "injected_fault": "every attempt met the flapping worker's 503",
}
# A 503 phase opens the worker's breaker for a while, so a drop phase comes right after a healthy one.
FLAP_MODES: tuple[dict[str, Any], ...] = (
    {"reset": True},
    {"drop_after_chunks": 2},
    {"reset": True},
    {"status": 503},
)
KINDS = ("chat", "stream", "loop", "loop_stream", "abandon")
WEIGHTS = (42, 33, 12, 8, 5)


@dataclass
class Tally:
    ok: Counter[str] = field(default_factory=Counter)
    explained: Counter[str] = field(default_factory=Counter)
    unexplained: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def fail(self, kind: str, why: str, *, code: str | None) -> None:
        if code in FLAP_CODES:
            self.explained[f"{kind}:{code}"] += 1
            return
        self.unexplained[f"{kind}:{why}"] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{kind}: {why}")


def _request(i: int, kind: str) -> tuple[dict[str, Any], str]:
    """(body, expected answer text) of request ``i``."""
    text = f"soak {i} " + " ".join(f"w{j}" for j in range(i % 7))
    if kind == "abandon":  # a longer stream, left by its client after the first bytes
        text += " " + " ".join(f"x{j}" for j in range(40))
    body: dict[str, Any] = {"model": "mock-model", "stream": kind in ("stream", "loop_stream", "abandon")}
    if kind.startswith("loop"):
        server = "faults" if i % 2 else "local"
        script = f"CALL {server}__echo {json.dumps({'text': text})}"
        body["messages"] = [{"role": "user", "content": script}]
        body["tools"] = [{"type": "mcp", "server_label": server, "require_approval": "never"}]
        return body, f"tool results: {text}"
    body["messages"] = [{"role": "user", "content": text}]
    return body, f"echo: {text}"


def _check_stream(raw: bytes, expected: str) -> tuple[str | None, str | None]:
    """(problem or None, error code or None) of a finished stream body."""
    events = [e for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
    if not events or events[-1] != b"data: [DONE]":
        return "stream without [DONE]", None
    text = ""
    for event in events[:-1]:
        try:
            chunk = orjson.loads(event[6:])
        except orjson.JSONDecodeError:
            return "malformed stream event", None
        if "error" in chunk:
            return "error event", str(chunk["error"].get("code"))
        for choice in chunk.get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return (None if text == expected else "wrong stream text"), None


async def _abandon(session: aiohttp.ClientSession, gw: str, body: dict[str, Any], tally: Tally) -> None:
    """Read the first bytes of a stream, then drop the connection."""
    try:
        async with session.post(gw + CHAT, json=body) as resp:
            first = await resp.content.readany()
            status = resp.status
            resp.close()
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.fail("abandon", f"transport {type(exc).__name__}", code=None)
        return
    if status == 200 and first.startswith(b"data: "):
        tally.ok["abandon"] += 1
        return
    try:
        code = str(orjson.loads(first)["error"]["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code = None
    tally.fail("abandon", f"status {status} {code}", code=code)


async def _one(session: aiohttp.ClientSession, gw: str, i: int, kind: str, tally: Tally) -> None:
    body, expected = _request(i, kind)
    if kind == "abandon":
        await _abandon(session, gw, body, tally)
        return
    try:
        async with session.post(gw + CHAT, json=body) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.fail(kind, f"transport {type(exc).__name__}", code=None)
        return
    if status != 200:
        try:
            error_code = str(orjson.loads(raw)["error"]["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            tally.fail(kind, f"status {status} without an OpenAI error", code=None)
            return
        tally.fail(kind, f"status {status} {error_code}", code=error_code)
        return
    problem: str | None
    code: str | None
    if body["stream"]:
        problem, code = _check_stream(raw, expected)
    else:
        try:
            answer = orjson.loads(raw)["choices"][0]["message"]["content"]
            problem, code = (None if answer == expected else "wrong text"), None
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            problem, code = "malformed JSON answer", None
    if problem is None:
        tally.ok[kind] += 1
    else:
        tally.fail(kind, problem + (f" {code}" if code else ""), code=code)


async def _flap(worker: str, interval: float, stop_flag: asyncio.Event, counts: Counter[str]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        step = 0
        while not stop_flag.is_set():
            mode = FLAP_MODES[step % len(FLAP_MODES)]
            async with session.post(worker + "/_smg/faults", json={"reset": True, **mode}) as resp:
                resp.raise_for_status()
            counts[next(iter(mode))] += 1
            step += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_flag.wait(), interval)
        async with session.post(worker + "/_smg/faults", json={"reset": True}) as resp:
            resp.raise_for_status()


async def _drive(
    gw: str, flapping: str | None, args: argparse.Namespace, *, requests: int
) -> tuple[Tally, Counter[str], float]:
    """Send ``requests`` requests of the mix; with ``flapping``, flip that worker's faults meanwhile."""
    rng = random.Random(args.seed)
    kinds = rng.choices(KINDS, weights=WEIGHTS, k=requests)
    tally, flaps, stop_flag = Tally(), Counter[str](), asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=args.concurrency)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await _one(session, gw, i, kinds[i], tally)

    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        flapper = None
        if flapping is not None:
            flapper = asyncio.create_task(_flap(flapping, args.flap_interval, stop_flag, flaps))
        try:
            await asyncio.gather(*(client(session) for _ in range(args.concurrency)))
        finally:
            stop_flag.set()
            if flapper is not None:
                await flapper
    return tally, flaps, time.monotonic() - started


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry))
    return found


def _tcp_sockets(pid: int, gateway_port: int) -> dict[str, int]:
    """The process's TCP sockets: listening, accepted from clients (local port = the gateway's), and
    opened to other processes (the workers, the HTTP MCP server)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    counts = {"listening": 0, "from_clients": 0, "outbound": 0}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[9] not in inodes:
                    continue
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "0A":  # LISTEN
                    counts["listening"] += 1
                elif local_port == gateway_port:
                    counts["from_clients"] += 1
                else:
                    counts["outbound"] += 1
    return counts


def _footprint(pid: int, gateway_port: int) -> dict[str, Any]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return {
        "rss_kib": rss_kib,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "tcp": _tcp_sockets(pid, gateway_port),
        "children": len(_children(pid)),
    }


@contextlib.contextmanager
def _processes(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], str, list[str], list[int]]]:
    """(gateway, its ready line "URL (metrics URL)", worker URLs, every PID started here or by the
    gateway); all stopped on exit."""
    started: list[subprocess.Popen[str]] = []
    pids: list[int] = []

    def start(cmd: list[str], prefix: str) -> tuple[subprocess.Popen[str], str]:
        proc = spawn(cmd, stderr=subprocess.DEVNULL)
        started.append(proc)
        pids.append(proc.pid)
        return proc, wait_for_line(proc, prefix, timeout=60)

    py = sys.executable
    try:
        _, mcp_url = start(
            [py, "-m", "mcp_servers.faults", "--transport", "streamable-http"], "MCP_SERVER_READY"
        )
        workers = [start([py, "-m", "smg.testing.worker", "--port", "0"], WORKER_READY)[1] for _ in range(3)]
        config = workdir / "mcp.yaml"
        config.write_text(
            json.dumps(
                {
                    "servers": [
                        {"name": "faults", "protocol": "streamable", "url": mcp_url},
                        {
                            "name": "local",
                            "protocol": "stdio",
                            "command": py,
                            "args": ["-m", "mcp_servers.faults", "--transport", "stdio"],
                        },
                    ]
                }
            )
        )
        gateway, line = start(
            [py, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0",
             "--worker-urls", *workers, "--policy", "round_robin", "--mcp-config-path", str(config),
             "--mcp-registry", str(workdir / "registry.db"), "--retry-initial-backoff-ms", "5",
             "--retry-max-backoff-ms", "50", "--cb-failure-threshold", "3", "--cb-timeout-duration-secs", "1",
             "--health-check-interval-secs", "1", "--max-concurrent-requests", "0", "--log-level", "warning"],
            GATEWAY_READY,
        )  # fmt: skip
        yield gateway, line, workers, pids
    finally:
        for proc in reversed(started):
            stop(proc)


async def _wait_ready(gw: str) -> None:
    """Until a tool loop through each MCP server answers (the stdio child starts in about a second)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        deadline = time.monotonic() + 60
        for server in ("faults", "local"):
            body, expected = _request(1 if server == "faults" else 2, "loop")
            while True:
                async with session.post(gw + CHAT, json=body) as resp:
                    raw = await resp.read()
                if resp.status == 200 and orjson.loads(raw)["choices"][0]["message"]["content"] == expected:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the tool loop through {server!r} did not work within 60 s: {raw[:200]!r}"
                    )
                await asyncio.sleep(0.2)


async def _scrape(metrics_url: str) -> dict[str, int]:
    """Worker-layer counters of the gateway (retries, breaker transitions, failed attempts by type) and
    what it still holds (requests in progress, in flight at workers)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(metrics_url) as resp,
    ):
        text = await resp.text()
    found: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("smg_worker_retries_total", "smg_worker_retries_exhausted_total"):
                key = sample.name.removeprefix("smg_worker_").removesuffix("_total")
            elif sample.name == "smg_worker_cb_transitions_total":
                key = f"cb_to_{sample.labels['to']}"
            elif sample.name == "smg_worker_errors_total":
                key = f"worker_errors_{sample.labels['error_type']}"
            elif sample.name in ("smg_http_connections_active", "smg_worker_requests_active"):
                key = sample.name.removeprefix("smg_") + "_after_idle"
            else:
                continue
            found[key] = found.get(key, 0) + int(sample.value)
    return dict(sorted(found.items()))


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="smg-soak-") as tmp, _processes(Path(tmp)) as procs:
        gateway, ready, workers, pids = procs
        gw, metrics_url = ready.split()[0], ready.rpartition(" ")[2].rstrip(")")
        asyncio.run(_wait_ready(gw))
        # Warm up at full concurrency first, so connection pools are as full before as after.
        warm, _, _ = asyncio.run(
            _drive(gw, None, args, requests=max(args.concurrency * 4, args.requests // 10))
        )
        if warm.unexplained or warm.explained:
            raise RuntimeError(f"the warm-up without faults failed: {warm.examples}")
        time.sleep(args.settle_secs)
        port = int(gw.rsplit(":", 1)[1])
        before = _footprint(gateway.pid, port)
        gateway_children = _children(gateway.pid)
        pids.extend(gateway_children)
        tally, flaps, seconds = asyncio.run(_drive(gw, workers[0], args, requests=args.requests))
        time.sleep(args.settle_secs)
        after = _footprint(gateway.pid, port)
        counters = asyncio.run(_scrape(metrics_url))
        pids.extend(p for p in _children(gateway.pid) if p not in pids)
    deadline = time.monotonic() + 15
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    leaked = [p for p in pids if pid_alive(p)]
    total_ok = sum(tally.ok.values())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python -m bench.soak " + " ".join(sys.argv[1:]),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "flap_interval_secs": args.flap_interval,
        "settle_secs": args.settle_secs,
        "seconds": round(seconds, 1),
        "requests_per_second": round(args.requests / seconds, 1),
        "ok": total_ok,
        "ok_by_kind": dict(tally.ok),
        "explained_errors": dict(tally.explained),
        "unexplained_errors": dict(tally.unexplained),
        "unexplained_examples": tally.examples,
        "lost": args.requests - total_ok,
        "flap_switches": dict(flaps),
        "gateway_before": before,
        "gateway_after": after,
        "gateway_children_pids": gateway_children,
        "processes_started": len(pids),
        "leaked_processes": leaked,
        "gateway_metrics": counters,
    }


def _markdown(summary: dict[str, Any]) -> str:
    before, after = summary["gateway_before"], summary["gateway_after"]
    lines = [
        f"# Soak run {summary['date']}",
        "",
        f"`{summary['command']}`",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests (concurrency) | {summary['requests']} ({summary['concurrency']}) |",
        f"| duration | {summary['seconds']} s ({summary['requests_per_second']} req/s) |",
        f"| answered correctly (abandoned streams: first bytes seen) | {summary['ok']} "
        f"{summary['ok_by_kind']} |",
        f"| errors explained by the flapping worker | {sum(summary['explained_errors'].values())} "
        f"{summary['explained_errors']} |",
        f"| unexplained losses | {sum(summary['unexplained_errors'].values())} "
        f"{summary['unexplained_errors']} |",
        f"| fault switches of the flapping worker | {summary['flap_switches']} |",
        f"| gateway RSS before / after | {before['rss_kib'] / 1024:.1f} MiB / "
        f"{after['rss_kib'] / 1024:.1f} MiB |",
        f"| gateway open fds before / after | {before['fds']} / {after['fds']} |",
        f"| gateway TCP sockets before / after | {before['tcp']} / {after['tcp']} |",
        f"| gateway child processes before / after | {before['children']} / {after['children']} |",
        f"| gateway worker-layer counters | {summary['gateway_metrics']} |",
        f"| processes alive after stop | {len(summary['leaked_processes'])} of "
        f"{summary['processes_started']} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--flap-interval", type=float, default=0.5, help="seconds between fault switches")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settle-secs",
        type=float,
        default=20.0,
        help="idle time before each footprint reading; past the 15 s keep-alive of idle worker connections",
    )
    parser.add_argument("--out", type=Path, default=Path("soak-results"))
    args = parser.parse_args(argv)
    summary = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "soak.md").write_text(_markdown(summary))
    print(_markdown(summary))
    return 1 if summary["unexplained_errors"] or summary["leaked_processes"] else 0


if __name__ == "__main__":
    sys.exit(main())
