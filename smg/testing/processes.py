"""Child processes for the demo and the tests: start with a parent-death signal, wait for a ready line
(bounded), stop by PID (SIGTERM, bounded wait, then SIGKILL)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_LINES: dict[int, queue.Queue[str | None]] = {}
_PUMPS: dict[int, threading.Thread] = {}


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    with stream:
        for line in stream:
            lines.put(line)
    lines.put(None)


def spawn(
    args: Sequence[str], *, env: dict[str, str] | None = None, stderr: int | None = None
) -> subprocess.Popen[str]:
    """Start ``args`` with stdout piped (text, read by a daemon thread) and a parent-death SIGTERM."""
    proc = subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=_die_with_parent,  # only prctl, no locks: safe between fork and exec
    )
    lines: queue.Queue[str | None] = queue.Queue()
    _LINES[proc.pid] = lines
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    _PUMPS[proc.pid] = pump
    return proc


def wait_for_line(proc: subprocess.Popen[str], prefix: str, *, timeout: float = 30.0) -> str:
    """Read stdout lines until one starts with ``prefix``; returns the rest of that line, stripped.

    Only for processes started with `spawn`. Raises TimeoutError after ``timeout`` seconds,
    RuntimeError if the process closes stdout first.
    """
    lines = _LINES[proc.pid]
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no {prefix!r} line from {proc.args!r} within {timeout}s") from None
        if line is None:
            raise RuntimeError(f"{proc.args!r} closed stdout before printing {prefix!r}")
        if line.startswith(prefix):
            return line[len(prefix) :].strip()


def stop(proc: subprocess.Popen[str], *, timeout: float = 10.0) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    _LINES.pop(proc.pid, None)
    pump = _PUMPS.pop(proc.pid, None)
    if pump is not None:
        pump.join(timeout)  # it closes stdout at EOF
    return proc.returncode


@contextlib.contextmanager
def running(
    args: Sequence[str], prefix: str, *, timeout: float = 30.0
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a process, wait for its ready line, yield ``(proc, rest_of_line)``, stop it on exit."""
    proc = spawn(args)
    try:
        yield proc, wait_for_line(proc, prefix, timeout=timeout)
    finally:
        stop(proc)


def pid_alive(pid: int) -> bool:
    """True while a process with this PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return True
        return False
