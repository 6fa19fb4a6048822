"""`KeyStore` in PostgreSQL (`--database-url postgresql://...`): table ``api_keys``, as in SQLite.

`version` is the change counter of channel ``smg_keys``, bumped (and NOTIFYed) by a trigger in the
transaction of every change: a key revoked through one replica is refused by every other within the
change feed's delay (`smg.postgres.feed`). A database that cannot be reached is `KeyStoreUnavailable`
(503); the keys already loaded keep authenticating meanwhile.
"""

from __future__ import annotations

import builtins
from typing import Any

import psycopg

from smg.errors import KeyExists, KeyNotFound, KeyStoreError, KeyStoreUnavailable
from smg.keys.record import KeyRecord
from smg.keys.store import COLUMNS, decode, encode
from smg.postgres.database import PgDatabase
from smg.postgres.migrate import CHANGES_SQL, change_triggers, change_version
from smg.sqlite_file import StorageObserver

CHANNEL = "smg_keys"
MIGRATIONS = (
    CHANGES_SQL
    + """CREATE TABLE api_keys (
  name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION);"""
    + change_triggers("api_keys", CHANNEL),
)
_Db = psycopg.Connection[Any]


class PgKeyStore:
    """`KeyStore` in the PostgreSQL database at ``url`` (migrated when opened)."""

    def __init__(self, url: str, *, observer: StorageObserver | None = None) -> None:
        self._db = PgDatabase(
            url,
            component="keys",
            migrations=MIGRATIONS,
            error=KeyStoreError,
            unavailable=KeyStoreUnavailable,
            observer=observer,
            open_operation="key_open",
        )
        self.path = self._db.where

    def list(self) -> builtins.list[KeyRecord]:
        def run(db: _Db) -> builtins.list[KeyRecord]:
            rows = db.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY name").fetchall()
            return [decode(row, self.path) for row in rows]

        return self._db.observed("key_list", lambda: self._db.run(run))

    def get(self, name: str) -> KeyRecord:
        def run(db: _Db) -> KeyRecord:
            row = db.execute(f"SELECT {COLUMNS} FROM api_keys WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise KeyNotFound(name)
            return decode(row, self.path)

        return self._db.observed("key_get", lambda: self._db.run(run))

    def add(self, record: KeyRecord) -> None:
        values = encode(record)

        def run(db: _Db) -> None:
            inserted = db.execute(
                f"INSERT INTO api_keys ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                values,
            )
            if inserted.rowcount == 0:
                raise KeyExists(record.name)

        self._db.observed("key_add", lambda: self._db.run(run))

    def revoke(self, name: str, *, at: float) -> KeyRecord:
        def run(db: _Db) -> KeyRecord:
            db.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL", (at, name)
            )
            row = db.execute(f"SELECT {COLUMNS} FROM api_keys WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise KeyNotFound(name)
            return decode(row, self.path)

        return self._db.observed("key_revoke", lambda: self._db.run(run))

    def version(self) -> int:
        return self._db.observed("key_version", lambda: self._db.run(lambda db: change_version(db, CHANNEL)))

    def close(self) -> None:
        """Close the connections this store opened."""
        self._db.close()
