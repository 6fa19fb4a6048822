"""The serving-process side of ``--processes N``: what a process started by the supervisor
(`smg.serving.supervisor`) receives, and how it reports that it serves.

The supervisor starts each serving process as ``python -m smg <the gateway's own arguments>`` with
three variables: `SOCKET_ENV`, the descriptor of the listening socket it inherits; `READY_ENV`, the
write end of a pipe on which it writes one byte once it serves; `PARENT_ENV`, the supervisor's PID.
`inherited` reads and removes them (stdio MCP servers and other children must not see them) and
arms the parent-death signal: a serving process gets SIGTERM, and drains, when the supervisor dies,
even by SIGKILL (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass

SOCKET_ENV = "SMG_SERVING_SOCKET_FD"
READY_ENV = "SMG_SERVING_READY_FD"
PARENT_ENV = "SMG_SERVING_PARENT_PID"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Inherited:
    """What a serving process got from its supervisor: the listening socket and the ready pipe."""

    sock: socket.socket
    ready_fd: int

    def ready(self, _url: str, _metrics_url: str) -> None:
        """Tell the supervisor this process serves (the ``on_ready`` of `smg.serving.server.serve`)."""
        os.write(self.ready_fd, b"1")
        os.close(self.ready_fd)


def inherited(environ: MutableMapping[str, str] = os.environ) -> Inherited | None:
    """The supervisor's socket and ready pipe when this process is a serving process under it, else
    None. Exits at once (status 1) when the supervisor died before the death signal was armed."""
    fd, ready, parent = (environ.pop(name, None) for name in (SOCKET_ENV, READY_ENV, PARENT_ENV))
    if fd is None or ready is None or parent is None:
        return None
    _die_with_parent(int(parent))
    sock = socket.socket(fileno=int(fd))
    sock.setblocking(False)
    return Inherited(sock=sock, ready_fd=int(ready))


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the supervisor died before the death signal was armed
        os._exit(1)
