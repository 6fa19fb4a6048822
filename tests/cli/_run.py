"""Running the real ``smg`` command: with its output in pipes, or with one stream on a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Variables that would make rich treat a pipe as a terminal (or the reverse), or pick a target for us.
_DROPPED = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS", "LINES")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMG_") and k not in _DROPPED}
    return {**env, "TERM": "xterm-256color", **extra}


def smg(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m smg ARGS`` with stdout and stderr pipes."""
    return subprocess.run(
        [sys.executable, "-m", "smg", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env or clean_env(),
    )


def smg_on_terminal(
    *args: str, terminal: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    """``python -m smg ARGS`` with its ``terminal`` stream ("stdout" or "stderr") on a 120x40
    pseudo-terminal and the other stream in a file: (exit code, terminal text, file text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    with tempfile.TemporaryFile() as other:
        on_terminal = terminal == "stdout"
        proc = subprocess.Popen(
            [sys.executable, "-m", "smg", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave if on_terminal else other,
            stderr=other if on_terminal else slave,
            cwd=REPO_ROOT,
            env=env or clean_env(),
        )
        os.close(slave)
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([master], [], [], left)[0]:
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        other.seek(0)
        return code, b"".join(chunks).decode("utf-8", "replace"), other.read().decode("utf-8", "replace")
