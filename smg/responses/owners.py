"""Who runs a background response, for the SQLite store: an owner token per store, and whether the
owner of a token still lives.

A token is ``<pid>:<start>:<random>``: the process id, the process's start time as the kernel counts
it (``/proc/<pid>/stat``; a reused pid has another) and a random part per store. In the process that
made it, a token lives until its store is closed; in any other process on the host, it lives while a
process with that pid and start time runs and is not a zombie. Where ``/proc`` is missing, a process
with that pid existing is taken as the owner living (a reused pid then keeps a dead owner's runs until
that process ends). A token that cannot be read (a row of an older version) has no living owner.

This is the SQLite counterpart of the PostgreSQL store's owner advisory locks: a gateway process that
starts fails only the runs whose owner is gone, never those a live sibling process still runs.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from pathlib import Path

_live: set[str] = set()
_guard = threading.Lock()


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` from /proc (None: no such process, or a zombie); ``""`` where
    /proc is not available and the process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        return "" if _exists(pid) else None
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its last ')'.
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] == "Z":  # fields[0] is the state (field 3), [19] the start (22)
        return None
    return fields[19]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_owner() -> str:
    """A fresh token for a store of this process, living until `release`."""
    pid = os.getpid()
    token = f"{pid}:{_start_time(pid) or ''}:{secrets.token_hex(8)}"
    with _guard:
        _live.add(token)
    return token


def release(token: str) -> None:
    """The store of ``token`` is closed: its runs have no living owner any more."""
    with _guard:
        _live.discard(token)


def alive(token: str) -> bool:
    """Whether the owner of ``token`` still lives (see the module's docstring)."""
    pid_text, _, rest = token.partition(":")
    start, _, random = rest.partition(":")
    if not pid_text.isdigit() or not random:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _guard:
            return token in _live
    found = _start_time(pid)
    return found is not None and (found == start or found == "")


def add_column(db: sqlite3.Connection) -> None:
    """Give the ``background_runs`` table of a file an older version made its ``owner`` column (its
    rows get ``''``: no living owner)."""
    if "owner" not in {row[1] for row in db.execute("PRAGMA table_info(background_runs)")}:
        db.execute("ALTER TABLE background_runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
