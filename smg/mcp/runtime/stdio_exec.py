"""Launcher of stdio MCP servers: ``python -I stdio_exec.py --parent PID -- COMMAND ARGS...``.

Asks Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``; the setting survives
``exec``), announces its PID on stderr as ``SMG_STDIO_PID <pid>``, then replaces itself with COMMAND.
So the server is never orphaned, even when the gateway is killed with SIGKILL. When COMMAND cannot be
run, it writes one line, ``cannot run 'COMMAND': REASON``, on stderr and exits with status 127. The
gateway runs this file by path in isolated mode: it must import only the standard library.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import NoReturn

PID_PREFIX = "SMG_STDIO_PID"
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--parent" or argv[2] != "--":
        sys.stderr.write("usage: stdio_exec.py --parent PID -- COMMAND [ARGS...]\n")
        raise SystemExit(2)
    command = argv[3:]
    try:
        _die_with_parent(int(argv[1]))
    except OSError as exc:
        _fail(f"cannot run {command[0]!r}: {exc.strerror or exc}")
    sys.stderr.write(f"{PID_PREFIX} {os.getpid()}\n")
    sys.stderr.flush()
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        _fail(f"cannot run {command[0]!r}: {exc.strerror or exc}")


def _fail(cause: str) -> NoReturn:
    """One line on stderr (the gateway shows the last lines in its error), then exit 127 (as a shell)."""
    sys.stderr.write(cause + "\n")
    sys.stderr.flush()
    raise SystemExit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
