"""Slow stream readers: how much memory the gateway holds for clients that read far slower than a worker
writes, and whether it gives the memory back.

    python -m bench.slowreaders [--streams 300] [--words 20000] [--rate 512] [--hold-secs 30]
                                [--rounds 2] [--idle-secs 25] [--out DIR] [--gateway-arg ARG]...

Starts a scripted worker and a gateway (``python -m smg``) as real processes on 127.0.0.1. The gateway's
RSS (VmRSS of /proc/PID/status) is read after a warm-up. Each round then opens ``--streams`` raw client
sockets at once; each asks for a stream whose answer echoes ``--words`` words (about 170 bytes a word,
written by the worker as fast as the gateway reads) and then reads ``--rate`` bytes a second. After
``--hold-secs`` every client closes its socket. Shown per round: the peak RSS (VmHWM, reset before the
round), the RSS at the end of the hold with the number of streams the gateway still had open, the RSS
once the gateway reports no request in progress and ``--idle-secs`` later. The kernel's TCP buffer memory
(/proc/net/sockstat, every process's sockets) is shown apart: it is no process's RSS, and it is where an
answer that fits in the sockets' buffers waits for a slow reader. A small non-streaming request every
second during the hold shows whether other clients are answered. Writes ``slowreaders.json`` and
``slowreaders.md`` to ``--out`` (default bench/results).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench.procs import cpu_seconds, rss_kib
from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY

CHAT = "/v1/chat/completions"
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _tcp_kernel_kib() -> int:
    """Memory the kernel holds in TCP socket buffers, all processes (pages in /proc/net/sockstat)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * _PAGE_KIB
    return 0


@contextlib.contextmanager
def _processes(gateway_args: list[str]) -> Iterator[tuple[int, str, str]]:
    """(gateway PID, gateway URL, metrics URL); both processes stopped on exit."""
    py = sys.executable
    started = []
    try:
        worker = spawn([py, "-m", "smg.testing.worker", "--port", "0"])
        started.append(worker)
        worker_url = wait_for_line(worker, WORKER_READY, timeout=60)
        gateway = spawn(
            [py, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0",
             "--worker-urls", worker_url, "--max-concurrent-requests", "0", "--log-level", "warning",
             *gateway_args]
        )  # fmt: skip
        started.append(gateway)
        line = wait_for_line(gateway, GATEWAY_READY, timeout=60)  # "URL (metrics URL/metrics)"
        url, metrics = line.split()[0], line.split()[-1].strip("()")
        yield gateway.pid, url, metrics
    finally:
        for proc in reversed(started):
            stop(proc)


def _request(words: int) -> bytes:
    """A raw HTTP/1.1 stream request whose echoed answer has ``words`` content words."""
    text = " ".join(f"w{i % 1000}" for i in range(words))
    body = json.dumps(
        {"model": "mock-model", "stream": True, "messages": [{"role": "user", "content": text}]}
    ).encode()
    head = f"POST {CHAT} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


async def _slow_reader(host: str, port: int, request: bytes, rate: int, stop_at: asyncio.Event) -> int:
    """Send ``request`` and read ``rate`` bytes a second until ``stop_at``; returns the bytes read."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    got = 0
    try:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, request)
        while not stop_at.is_set():
            budget = rate
            while budget > 0:
                try:
                    data = sock.recv(budget)
                except BlockingIOError:
                    break
                if not data:
                    return got
                got += len(data)
                budget -= len(data)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop_at.wait()
    except OSError:
        pass
    finally:
        sock.close()
    return got


async def _probe(session: aiohttp.ClientSession, url: str, stop_at: asyncio.Event) -> tuple[int, int]:
    """A small non-streaming request every second until ``stop_at``: (answered 200, sent)."""
    body = {"model": "mock-model", "messages": [{"role": "user", "content": "still served?"}]}
    ok = sent = 0
    while not stop_at.is_set():
        sent += 1
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.post(url + CHAT, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
                await r.read()
                ok += r.status == 200
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop_at.wait()
    return ok, sent


async def _in_progress(session: aiohttp.ClientSession, metrics: str) -> int:
    """Requests the gateway has in progress (its ``smg_http_connections_active`` gauge)."""
    async with session.get(metrics) as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("smg_http_connections_active "):
            return int(float(line.split()[1]))
    raise RuntimeError("the gateway's metrics have no smg_http_connections_active")


async def _until_idle(session: aiohttp.ClientSession, metrics: str) -> None:
    async with asyncio.timeout(120):
        while await _in_progress(session, metrics) > 0:  # noqa: ASYNC110  # another process's state
            await asyncio.sleep(0.2)


async def _warm_up(session: aiohttp.ClientSession, url: str) -> None:
    body = {"model": "mock-model", "stream": True, "messages": [{"role": "user", "content": "w " * 2000}]}
    for _ in range(20):
        async with session.post(url + CHAT, json=body) as resp:
            await resp.read()


def _reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (``5`` to clear_refs); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


async def _round(pid: int, url: str, metrics: str, args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _request(args.words)
    stop_at = asyncio.Event()
    hwm = _reset_peak(pid)
    cpu = cpu_seconds(pid)
    sampled = kernel_peak = 0
    async with aiohttp.ClientSession() as session:
        readers = [
            asyncio.create_task(_slow_reader(host, port, request, args.rate, stop_at))
            for _ in range(args.streams)
        ]
        probe = asyncio.create_task(_probe(session, url, stop_at))
        held_from = time.monotonic()
        while time.monotonic() - held_from < args.hold_secs:
            sampled = max(sampled, rss_kib(pid))
            kernel_peak = max(kernel_peak, _tcp_kernel_kib())
            await asyncio.sleep(0.25)
        held, open_streams = rss_kib(pid), await _in_progress(session, metrics)
        stop_at.set()
        read = await asyncio.gather(*readers)
        ok, sent = await probe
        await _until_idle(session, metrics)
        after = rss_kib(pid)
        cpu = cpu_seconds(pid) - cpu
        await asyncio.sleep(args.idle_secs)  # the gateway on its own: what it gives back
        idle = rss_kib(pid)
    peak = rss_kib(pid, "VmHWM") if hwm else sampled
    return {
        "peak_mib": _mib(peak),
        "held_mib": _mib(held),
        "streams_open_in_gateway": open_streams,
        "after_mib": _mib(after),
        "idle_mib": _mib(idle),
        "kernel_tcp_peak_mib": _mib(kernel_peak),
        "client_bytes_read": sum(read),
        "gateway_cpu_secs": round(cpu, 1),
        "probes_ok": ok,
        "probes_sent": sent,
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    with _processes(args.gateway_arg) as (pid, url, metrics):
        async with aiohttp.ClientSession() as session:
            await _warm_up(session, url)
        baseline = rss_kib(pid)
        rounds = [await _round(pid, url, metrics, args) for _ in range(args.rounds)]
    return {
        "streams": args.streams,
        "words": args.words,
        "rate_bytes_per_s": args.rate,
        "hold_secs": args.hold_secs,
        "idle_secs": args.idle_secs,
        "baseline_mib": _mib(baseline),
        "rounds": rounds,
    }


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['streams']} streams of {result['words']} words, clients reading "
        f"{result['rate_bytes_per_s']} B/s for {result['hold_secs']:g} s; gateway RSS after warm-up "
        f"{result['baseline_mib']} MiB",
        "",
        "| round | peak RSS | RSS at the end of the hold (streams still open in the gateway) "
        f"| once no request is in progress | {result['idle_secs']:g} s later "
        "| kernel TCP buffers, peak (all processes) | gateway CPU | other requests answered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(result["rounds"], 1):
        lines.append(
            f"| {i} | {r['peak_mib']} MiB | {r['held_mib']} MiB ({r['streams_open_in_gateway']}) "
            f"| {r['after_mib']} MiB | {r['idle_mib']} MiB | {r['kernel_tcp_peak_mib']} MiB "
            f"| {r['gateway_cpu_secs']} s | {r['probes_ok']}/{r['probes_sent']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slowreaders", description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=512, help="bytes a second each client reads")
    parser.add_argument("--hold-secs", type=float, default=30.0)
    parser.add_argument("--idle-secs", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument(
        "--gateway-arg", action="append", default=[], help="extra argument for the gateway (repeatable)"
    )
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "slowreaders.json").write_text(json.dumps(result, indent=2) + "\n")
    text = _markdown(result)
    (args.out / "slowreaders.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
