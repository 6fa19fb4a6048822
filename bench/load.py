"""Load generation: wrk runs (one machine-readable line from bench/wrk_report.lua) and a small asyncio
client that measures a stream's time to first byte."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "CHAT_LUA",
    "RESPONSES_LUA",
    "RESPONSES_NOSTORE_LUA",
    "RESPONSES_STREAM_LUA",
    "STREAM_LUA",
    "WrkResult",
    "ensure_wrk",
    "run_wrk",
    "ttfb_ms",
]

HERE = Path(__file__).resolve().parent
CHAT_LUA = HERE / "chat.lua"
STREAM_LUA = HERE / "chat_stream.lua"
# The same content as a Responses request (`instructions` and `input`), no tools: one model round.
RESPONSES_LUA = HERE / "responses.lua"
RESPONSES_STREAM_LUA = HERE / "responses_stream.lua"
RESPONSES_NOSTORE_LUA = HERE / "responses_nostore.lua"
_FILLER = "lorem ipsum dolor sit amet " * 32


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def ensure_wrk() -> tuple[str | None, str]:
    """The wrk binary, installing the Debian package when missing and allowed; else (None, why)."""
    found = shutil.which("wrk")
    if found:
        return found, ""
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            try:
                subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=False)
            except subprocess.TimeoutExpired:
                break
        found = shutil.which("wrk")
        if found:
            return found, ""
        return None, "wrk is missing and `apt-get install -y wrk` did not provide it"
    return None, "wrk is missing (install the Debian package: apt-get install -y wrk)"


def run_wrk(
    wrk: str,
    url: str,
    *,
    script: Path,
    conns: int,
    seconds: float,
    core: int | None,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """One wrk run (one thread) against ``url``; errors counts socket errors and non-2xx answers."""
    argv = [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(script)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(core), *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data = json.loads(line.split(" ", 1)[1])
            secs = data["duration_us"] / 1e6
            return WrkResult(
                requests=data["requests"],
                seconds=secs,
                errors=data["errors"] + data["status_errors"],
                rps=data["requests"] / secs if secs else 0.0,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}): {out.stderr.strip()[:300]}")


def _stream_request(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    body = json.dumps(
        {
            "model": "mock-model",
            "stream": True,
            "messages": [{"role": "system", "content": _FILLER}, {"role": "user", "content": "hello there"}],
            "max_tokens": 16,
        }
    ).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return parts.hostname or "127.0.0.1", parts.port or 80, head.encode() + body


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[float, bool]:
    """Send one streamed request on a kept-alive connection; (seconds to the first `data:`, still usable)."""
    t0 = time.perf_counter()
    writer.write(request)
    buf = b""
    first = 0.0
    while b"\r\n\r\n" not in buf:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"stream request failed: {head[:80]!r}")
    lower = head.lower()
    chunked = b"transfer-encoding: chunked" in lower
    buf = rest
    while True:
        if not first and b"data:" in buf:
            first = time.perf_counter() - t0
        if chunked and (buf.endswith(b"\r\n0\r\n\r\n") or buf == b"0\r\n\r\n"):
            return first, True
        chunk = await reader.read(65536)
        if not chunk:
            if chunked:
                raise ConnectionError("closed inside a chunked stream")
            return first, False  # close-delimited body: the caller reconnects
        buf = buf[-16:] + chunk if first else buf + chunk


async def _ttfb(url: str, n: int, headers: dict[str, str], budget: float) -> list[float]:
    host, port, request = _stream_request(url, headers)
    out: list[float] = []
    deadline = time.monotonic() + min(budget / 4, 3.0)  # a slow target gets fewer samples (at least 10)
    async with asyncio.timeout(budget):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in range(n):
                if i >= 10 and time.monotonic() > deadline:
                    break
                first, usable = await _one(reader, writer, request)
                out.append(first)
                if not usable:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()
    return out


def ttfb_ms(url: str, n: int, *, headers: dict[str, str] | None = None, timeout: float = 60.0) -> float:
    """Median time to the first `data:` byte of up to ``n`` sequential streamed requests on one connection
    (fewer when they take more than 3 s in all, but at least 10), in ms."""
    samples = asyncio.run(_ttfb(url, n, headers or {}, timeout))
    return statistics.median(samples) * 1000
