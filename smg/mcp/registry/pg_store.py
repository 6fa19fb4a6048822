"""`RegistryStore` in PostgreSQL (`--database-url postgresql://...`): table ``mcp_servers`` of JSON specs.

`version` is the change counter of channel ``smg_registry``, bumped (and NOTIFYed) by a trigger in the
transaction of every change, so every replica sharing the database sees one another's edits
(`smg.postgres.feed`). A database that cannot be reached is `McpRegistryUnavailable` (503).
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

from smg.mcp.errors import (
    InvalidMcpConfig,
    McpRegistryError,
    McpRegistryUnavailable,
    McpServerExists,
    McpServerNotFound,
)
from smg.mcp.registry.config import ServerSpec
from smg.postgres.database import PgDatabase
from smg.postgres.migrate import CHANGES_SQL, change_triggers, change_version
from smg.sqlite_file import StorageObserver

CHANNEL = "smg_registry"
MIGRATIONS = (
    CHANGES_SQL
    + "CREATE TABLE mcp_servers (name TEXT PRIMARY KEY, spec TEXT NOT NULL);"
    + change_triggers("mcp_servers", CHANNEL),
)
_Db = psycopg.Connection[Any]


class PgRegistry:
    """`RegistryStore` in the PostgreSQL database at ``url`` (migrated when opened)."""

    def __init__(
        self,
        url: str,
        *,
        observer: StorageObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._db = PgDatabase(
            url,
            component="registry",
            migrations=MIGRATIONS,
            error=McpRegistryError,
            unavailable=McpRegistryUnavailable,
            observer=observer,
            clock=clock,
        )
        self.path = self._db.where

    def list(self) -> builtins.list[ServerSpec]:
        def run(db: _Db) -> builtins.list[ServerSpec]:
            rows = db.execute("SELECT name, spec FROM mcp_servers ORDER BY name").fetchall()
            return [self._decode(name, raw) for name, raw in rows]

        return self._db.observed("list", lambda: self._db.run(run))

    def get(self, name: str) -> ServerSpec:
        def run(db: _Db) -> ServerSpec:
            row = db.execute("SELECT spec FROM mcp_servers WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise McpServerNotFound(name)
            return self._decode(name, row[0])

        return self._db.observed("get", lambda: self._db.run(run))

    def add(self, spec: ServerSpec) -> None:
        encoded = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))

        def run(db: _Db) -> None:
            inserted = db.execute(
                "INSERT INTO mcp_servers (name, spec) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (spec.name, encoded),
            )
            if inserted.rowcount == 0:
                raise McpServerExists(spec.name)

        self._db.observed("add", lambda: self._db.run(run))

    def remove(self, name: str) -> None:
        def run(db: _Db) -> None:
            if db.execute("DELETE FROM mcp_servers WHERE name = %s", (name,)).rowcount == 0:
                raise McpServerNotFound(name)

        self._db.observed("remove", lambda: self._db.run(run))

    def version(self) -> int:
        return self._db.observed("version", lambda: self._db.run(lambda db: change_version(db, CHANNEL)))

    def close(self) -> None:
        """Close the connections this store opened."""
        self._db.close()

    def _decode(self, name: str, raw: str) -> ServerSpec:
        try:
            return ServerSpec.from_dict(json.loads(raw))
        except (ValueError, TypeError, InvalidMcpConfig):
            raise McpRegistryError(
                f"stored server {name!r} is not a valid definition", path=self.path
            ) from None
