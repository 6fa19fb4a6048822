"""Child processes for the demo and the tests: start with a parent-death signal, wait for a ready line
(bounded), stop by PID (SIGTERM, bounded wait, then SIGKILL)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: Sequence[str], *, env: dict[str, str] | None = None, stderr: int | None = None
) -> subprocess.Popen[str]:
    """Start ``args`` with stdout piped (text) and a parent-death SIGTERM on Linux."""
    return subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=_die_with_parent,  # only prctl, no locks: safe between fork and exec
    )


def wait_for_line(proc: subprocess.Popen[str], prefix: str, *, timeout: float = 30.0) -> str:
    """Read stdout until a line starting with ``prefix``; returns the rest of that line, stripped.

    Raises TimeoutError after ``timeout`` seconds, RuntimeError if the process exits first.
    """
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {prefix!r} line from {proc.args!r} within {timeout}s")
            if not sel.select(remaining):
                continue
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{proc.args!r} exited (code {proc.wait(5)}) before printing {prefix!r}")
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
    if proc.stdout is not None:
        proc.stdout.close()
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
