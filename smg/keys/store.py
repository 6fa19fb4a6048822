"""Where keys live: the `KeyStore` seam and its SQLite implementation, in the gateway's database file
(the MCP registry's, which stored responses share), table ``api_keys``.

A key is stored as the SHA-256 of its secret (hex), never the secret. Revoking keeps the row (its name
stays taken, and ``list`` shows it revoked). `KeyStore.version` changes whenever the table changes, also
by another process (``smg keys revoke --registry FILE`` while a gateway runs), bumped by triggers, so a
gateway polls one small row to notice (`smg.keys.watch`).

Operations are synchronous, one small SQLite transaction each (`smg.sqlite_file`); callers on the event
loop run them with ``asyncio.to_thread``. Each is reported to a `StorageObserver` (``key_list``,
``key_get``, ``key_add``, ``key_revoke``, ``key_version``).
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
from typing import Any, Protocol

from smg.errors import KeyExists, KeyNotFound, KeyStoreError
from smg.keys.record import KeyRecord
from smg.keys.scope import KeyScope
from smg.sqlite_file import SqliteFile, StorageObserver

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
  name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS api_keys_version (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
INSERT OR IGNORE INTO api_keys_version (id, value) VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS api_keys_insert AFTER INSERT ON api_keys
  BEGIN UPDATE api_keys_version SET value = value + 1; END;
CREATE TRIGGER IF NOT EXISTS api_keys_update AFTER UPDATE ON api_keys
  BEGIN UPDATE api_keys_version SET value = value + 1; END;
CREATE TRIGGER IF NOT EXISTS api_keys_delete AFTER DELETE ON api_keys
  BEGIN UPDATE api_keys_version SET value = value + 1; END;
"""
COLUMNS = "name, digest, scope, created_at, expires_at, revoked_at"


class KeyStore(Protocol):
    """Stored keys. Implementations raise KeyStoreError when their storage fails."""

    def list(self) -> builtins.list[KeyRecord]:
        """Every key (revoked and expired ones included), ordered by name."""
        ...

    def get(self, name: str) -> KeyRecord:
        """The key called ``name``. Raises KeyNotFound."""
        ...

    def add(self, record: KeyRecord) -> None:
        """Store ``record``. Raises KeyExists when its name is taken (also by a revoked key)."""
        ...

    def revoke(self, name: str, *, at: float) -> KeyRecord:
        """Mark ``name`` revoked at ``at`` (a key revoked already keeps its first time). Raises
        KeyNotFound."""
        ...

    def version(self) -> int:
        """A number that changes whenever the stored keys change (cheap to poll)."""
        ...


class SqliteKeyStore:
    """`KeyStore` in the SQLite file at ``path`` (created with its parent directories)."""

    def __init__(self, path: str | os.PathLike[str], *, observer: StorageObserver | None = None) -> None:
        self._file = SqliteFile(
            path, schema=_SCHEMA, error=KeyStoreError, observer=observer, open_operation="key_open"
        )
        self.path = self._file.path

    def list(self) -> builtins.list[KeyRecord]:
        def run(db: sqlite3.Connection) -> builtins.list[KeyRecord]:
            rows = db.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY name").fetchall()
            return [self._decode(row) for row in rows]

        return self._file.observed("key_list", lambda: self._file.run(run))

    def get(self, name: str) -> KeyRecord:
        def run(db: sqlite3.Connection) -> KeyRecord:
            row = db.execute(f"SELECT {COLUMNS} FROM api_keys WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise KeyNotFound(name)
            return self._decode(row)

        return self._file.observed("key_get", lambda: self._file.run(run))

    def add(self, record: KeyRecord) -> None:
        values = encode(record)

        def run(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM api_keys WHERE name = ?", (record.name,)).fetchone():
                raise KeyExists(record.name)
            db.execute(f"INSERT INTO api_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", values)

        self._file.observed("key_add", lambda: self._file.run(run, write=True))

    def revoke(self, name: str, *, at: float) -> KeyRecord:
        def run(db: sqlite3.Connection) -> KeyRecord:
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (at, name))
            row = db.execute(f"SELECT {COLUMNS} FROM api_keys WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise KeyNotFound(name)
            return self._decode(row)

        return self._file.observed("key_revoke", lambda: self._file.run(run, write=True))

    def version(self) -> int:
        def run(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT value FROM api_keys_version WHERE id = 0").fetchone()
            return int(row[0]) if row is not None else 0

        return self._file.observed("key_version", lambda: self._file.run(run))

    def _decode(self, row: tuple[Any, ...]) -> KeyRecord:
        return decode(row, str(self.path))


def encode(record: KeyRecord) -> tuple[Any, ...]:
    """The stored columns (``COLUMNS``, in order) of ``record``."""
    s = record.scope
    scope = {
        "servers": sorted(s.servers) if s.servers is not None else None,
        "tools": sorted(s.tools) if s.tools is not None else None,
        "models": sorted(s.models) if s.models is not None else None,
        "rpm": s.rpm,
    }
    return (
        record.name,
        record.digest.hex(),
        json.dumps(scope, separators=(",", ":")),
        record.created_at,
        record.expires_at,
        record.revoked_at,
    )


def decode(row: tuple[Any, ...], where: str) -> KeyRecord:
    """The record of a stored row (``COLUMNS``). Raises KeyStoreError naming ``where``."""
    name, hexdigest, raw, created_at, expires_at, revoked_at = row
    try:
        scope = json.loads(raw)
        rpm = scope.get("rpm")
        if rpm is not None and (not isinstance(rpm, int) or rpm < 1):
            raise TypeError("not a rate")
        return KeyRecord(
            name=name,
            digest=bytes.fromhex(hexdigest),
            scope=KeyScope(
                name=name,
                servers=_set(scope.get("servers")),
                tools=_set(scope.get("tools")),
                models=_set(scope.get("models")),
                rpm=rpm,
            ),
            created_at=float(created_at),
            expires_at=None if expires_at is None else float(expires_at),
            revoked_at=None if revoked_at is None else float(revoked_at),
        )
    except (ValueError, TypeError, AttributeError):
        # A hand-edited row must not surface as the caller's 400, nor let a bad scope widen.
        raise KeyStoreError(f"stored key {name!r} is not a valid record", path=where) from None


def _set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("not a list of names")
    return frozenset(value)
