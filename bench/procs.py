"""Processes under measurement: start pinned to a core, wait until they answer, read their CPU time and
memory from /proc (the whole process tree), stop them by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smg.testing.processes import spawn, stop, wait_for_line

__all__ = [
    "Proc",
    "RssSampler",
    "cpu_seconds",
    "free_port",
    "rss_kib",
    "start",
    "stop_proc",
    "tree_pids",
    "wait_http",
]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    url: str
    log: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid


def free_port() -> int:
    """A port nobody listens on right now (bind 0, read, close); for programs that cannot bind 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    name: str,
    args: Sequence[str],
    *,
    core: int | None,
    ready_prefix: str | None = None,
    url: str = "",
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Proc:
    """Start ``args`` (pinned with taskset when ``core`` is set; taskset execs, so the PID is the program's).

    With ``ready_prefix`` the URL is the first word after that prefix on stdout; otherwise ``url`` is given.
    stderr goes to ``log`` (or is discarded).
    """
    argv = list(args)
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(core), *argv]
    err = open(log, "w") if log is not None else open(os.devnull, "w")  # noqa: SIM115  # closed below
    try:
        popen = spawn(argv, env=env, stderr=err.fileno())
    finally:
        err.close()
    proc = Proc(name=name, popen=popen, url=url, log=log)
    if ready_prefix is not None:
        try:
            proc.url = wait_for_line(popen, ready_prefix, timeout=timeout).split()[0]
        except (TimeoutError, RuntimeError):
            stop(popen)
            raise
    return proc


def stop_proc(proc: Proc) -> None:
    stop(proc.popen)


def wait_http(
    url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> None:
    """Poll until ``url`` answers 200 (POST ``body`` when given, else GET); TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        req = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    resp.read()
                    return
                last = f"status {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"status {exc.code}: {exc.read()[:200]!r}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s ({last})")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants, in seconds."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICKS


def process_cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid`` alone (all its threads, ended ones included), in seconds, to the
    nanosecond: its CPU-time clock (Linux: ``((~pid) << 3) | 2``, CPUCLOCK_SCHED of the whole process),
    for spans too short for the clock ticks of `cpu_seconds`. Falls back to `cpu_seconds`."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        return cpu_seconds(pid)


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """Sum of ``key`` (VmRSS, or VmHWM for each process's peak) over the tree, in KiB."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
                    break
    return total


class RssSampler:
    """Samples the tree's VmRSS every ``interval`` seconds on a thread; ``peak_kib``: the largest sum."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            self._stop.wait(self._interval)
