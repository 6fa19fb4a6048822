"""Reading a gateway's process tree and connections from /proc (Linux), for the tests of
``--processes``: the serving processes under a supervisor, every process below it, and which process
holds the server side of a client's TCP connection."""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx

from smg.testing.processes import pid_alive


def _parents() -> dict[int, int]:
    """PID -> parent PID of every live process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    return sorted(child for child, parent in _parents().items() if parent == pid)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children...)."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL each process of ``pids`` still alive (a test's last resort, by PID)."""
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds."""
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(int(target[8:-1]))
    except OSError:
        pass
    return found


def _server_sides(server_port: int) -> dict[int, int]:
    """Remote (client) port -> socket inode of each IPv4 TCP connection whose local port is
    ``server_port``."""
    sides = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local, remote, inode = cols[1], cols[2], int(cols[9])
        if int(local.split(":")[1], 16) == server_port and inode:
            sides[int(remote.split(":")[1], 16)] = inode
    return sides


def holders(client_ports: Iterable[int], server_port: int, pids: Iterable[int]) -> dict[int, int]:
    """Client port -> the PID (one of ``pids``) holding the server side of that open connection."""
    sides = _server_sides(server_port)
    owner = {inode: pid for pid in pids for inode in _inodes(pid)}
    found = {}
    for port in client_ports:
        inode = sides.get(port)
        if inode is not None and inode in owner:
            found[port] = owner[inode]
    return found


def client_port(response: httpx.Response) -> int:
    """The local port of the connection ``response`` came on (httpcore's network stream)."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def served_per_process(per_port: Counter[int], server_port: int, pids: Iterable[int]) -> Counter[int]:
    """Requests per serving PID, from requests per client port (connections still open)."""
    owner = holders(per_port, server_port, pids)
    served: Counter[int] = Counter()
    for port, count in per_port.items():
        served[owner.get(port, 0)] += count
    return served
