"""Launcher of stdio MCP servers: ``python -I stdio_exec.py --parent PID -- COMMAND ARGS...``.

Asks Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``; the setting survives
``exec``), announces its PID on stderr as ``SMG_STDIO_PID <pid>``, then replaces itself with COMMAND.
So the server is never orphaned, even when the gateway is killed with SIGKILL. The gateway runs this file
by path in isolated mode: it must import only the standard library.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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
    _die_with_parent(int(argv[1]))
    sys.stderr.write(f"{PID_PREFIX} {os.getpid()}\n")
    sys.stderr.flush()
    command = argv[3:]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"cannot run {command[0]!r}: {exc.strerror}\n")
        raise SystemExit(127) from None


if __name__ == "__main__":
    main(sys.argv[1:])
