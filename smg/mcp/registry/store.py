"""Where MCP server registrations live: the `RegistryStore` seam and its SQLite implementation.

Operations are synchronous: each is one small SQLite transaction on a connection opened for it (safe from
any thread, and edits by other processes are always seen). Code on the event loop that cannot afford a
millisecond of disk I/O calls them through ``asyncio.to_thread``.

`RegistryStore.version` is a counter that changes whenever the stored content changes, including edits
made by another process (``smg mcp add`` against the file while a gateway runs): the gateway polls it and
reloads only when it moved. In SQLite the counter is bumped by triggers, so even a hand edit with the
``sqlite3`` shell moves it.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from smg.mcp.errors import InvalidMcpConfig, McpRegistryError, McpServerExists, McpServerNotFound
from smg.mcp.registry.config import ServerSpec
from smg.settings.paths import default_registry_path as default_registry_path  # re-exported
from smg.sqlite_file import NullStorageObserver as NullStorageObserver  # re-exported
from smg.sqlite_file import SqliteFile
from smg.sqlite_file import StorageObserver as StorageObserver  # re-exported

_T = TypeVar("_T")
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', 0);
CREATE TRIGGER IF NOT EXISTS servers_insert AFTER INSERT ON servers
  BEGIN UPDATE meta SET value = value + 1 WHERE key = 'version'; END;
CREATE TRIGGER IF NOT EXISTS servers_update AFTER UPDATE ON servers
  BEGIN UPDATE meta SET value = value + 1 WHERE key = 'version'; END;
CREATE TRIGGER IF NOT EXISTS servers_delete AFTER DELETE ON servers
  BEGIN UPDATE meta SET value = value + 1 WHERE key = 'version'; END;
"""


class RegistryStore(Protocol):
    """Registered MCP servers. Implementations raise McpRegistryError when their storage fails."""

    def list(self) -> builtins.list[ServerSpec]:
        """Every registered server, ordered by name."""
        ...

    def get(self, name: str) -> ServerSpec:
        """The server called ``name``. Raises McpServerNotFound."""
        ...

    def add(self, spec: ServerSpec) -> None:
        """Register ``spec``. Raises McpServerExists when its name is taken."""
        ...

    def remove(self, name: str) -> None:
        """Unregister ``name``. Raises McpServerNotFound."""
        ...

    def version(self) -> int:
        """A number that changes whenever the content changes (cheap to poll)."""
        ...


class SqliteRegistry:
    """`RegistryStore` in one SQLite file (WAL mode; one table of JSON specs; parent dirs created)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        observer: StorageObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
        busy_timeout_secs: float = 5.0,
    ) -> None:
        self._file = SqliteFile(
            path,
            schema=f"{_SCHEMA}PRAGMA user_version={_SCHEMA_VERSION};",
            error=McpRegistryError,
            observer=observer,
            clock=clock,
            busy_timeout_secs=busy_timeout_secs,
        )
        self.path = self._file.path

    def list(self) -> builtins.list[ServerSpec]:
        def run(db: sqlite3.Connection) -> builtins.list[ServerSpec]:
            rows = db.execute("SELECT name, spec FROM servers ORDER BY name").fetchall()
            return [self._decode(name, raw) for name, raw in rows]

        return self._file.observed("list", lambda: self._file.run(run))

    def get(self, name: str) -> ServerSpec:
        def run(db: sqlite3.Connection) -> ServerSpec:
            row = db.execute("SELECT spec FROM servers WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise McpServerNotFound(name)
            return self._decode(name, row[0])

        return self._file.observed("get", lambda: self._file.run(run))

    def add(self, spec: ServerSpec) -> None:
        def run(db: sqlite3.Connection) -> None:
            try:
                db.execute("INSERT INTO servers (name, spec) VALUES (?, ?)", (spec.name, _encode(spec)))
            except sqlite3.IntegrityError:
                raise McpServerExists(spec.name) from None

        self._file.observed("add", lambda: self._file.run(run, write=True))

    def remove(self, name: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM servers WHERE name = ?", (name,)).rowcount == 0:
                raise McpServerNotFound(name)

        self._file.observed("remove", lambda: self._file.run(run, write=True))

    def version(self) -> int:
        def run(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            return int(row[0]) if row is not None else 0

        return self._file.observed("version", lambda: self._file.run(run))

    def _decode(self, name: str, raw: str) -> ServerSpec:
        try:
            return ServerSpec.from_dict(json.loads(raw))
        except (ValueError, TypeError, InvalidMcpConfig):
            # A hand-edited or newer-format row must not surface as the caller's 400.
            raise McpRegistryError(
                f"stored server {name!r} is not a valid definition", path=str(self.path)
            ) from None


def _encode(spec: ServerSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
