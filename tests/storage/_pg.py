"""A real PostgreSQL server for the tests: ``initdb`` and ``postgres`` from the Debian package, on a free
port, its unix socket and data in a temporary directory, run as an unprivileged user when the tests run as
root (``postgres`` refuses root; CI runs as root), started and stopped by PID with bounded waits."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

_READY = "database system is ready to accept connections"


def bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are (None: PostgreSQL is not installed)."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "postgres").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One cluster in a temporary directory; `start` and `stop` may be called again (same port, data)."""

    def __init__(self, bin_path: Path) -> None:
        self._bin = bin_path
        self.root = Path(tempfile.mkdtemp(prefix="smg-pg-", dir="/tmp"))
        self.port = _free_port()
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._uid: int | None = None
        self._gid: int | None = None
        self._groups: list[int] | None = None
        if os.geteuid() == 0:  # postgres never runs as root
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._uid, self._gid, self._groups, self.user = nobody.pw_uid, nobody.pw_gid, [], "nobody"
        self.proc: subprocess.Popen[str] | None = None
        self._pump = threading.Thread()
        self._log: list[str] = []
        subprocess.run(
            [str(self._bin / "initdb"), "-D", str(self.root / "data"), "-U", self.user, "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{database}?host={self.root}&port={self.port}"

    def start(self) -> None:
        cmd = [str(self._bin / "postgres"), "-D", str(self.root / "data"), "-k", str(self.root)]
        cmd += ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        proc = subprocess.Popen(
            cmd,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
        )
        self.proc = proc
        ready = threading.Event()

        def pump() -> None:
            assert proc.stderr is not None
            with proc.stderr:
                for line in proc.stderr:
                    self._log.append(line)
                    if _READY in line:
                        ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(60) or proc.poll() is not None:
            self.stop()
            raise RuntimeError("PostgreSQL did not start:\n" + "".join(self._log[-20:]))

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), bounded; SIGKILL past it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        self._pump.join(10)  # its stderr closes at end of file

    def new_database(self) -> str:
        """A new empty database's URL."""
        name = f"smg_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """A started server, stopped and removed at the end. Skips the test when PostgreSQL is missing."""
    path = bindir()
    if path is None:
        pytest.skip("PostgreSQL is not installed (initdb and postgres not found; Debian package postgresql)")
    server = PgServer(path)
    try:
        server.start()
        yield server
    finally:
        server.remove()
