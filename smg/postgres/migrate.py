"""Versioned schema migrations: table ``schema_version`` holds, per component (``registry``, ``keys``,
``responses``), the number of its migrations applied.

Each migration runs in its own transaction that first takes one transaction-scoped advisory lock
(`MIGRATION_LOCK`), then reads the component's version and applies the migration only if it is still
pending: replicas that start at once against an empty database queue on the lock, and the first one
migrates while the others find nothing left to do. A database whose version is past the migrations this
gateway knows (a newer gateway migrated it) is refused rather than used with a schema it does not know.

`CHANGES_SQL` is the change counters' part shared by every component: table ``smg_changes`` (one counter
per channel) and the trigger function ``smg_bump_change()`` that bumps the channel named by its argument
and sends ``NOTIFY channel, 'version'`` in the same transaction (delivered when it commits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from smg.errors import SmgError

MIGRATION_LOCK = 7_350_001  # pg_advisory_xact_lock key of every smg migration
CHANGES_SQL = """
CREATE TABLE IF NOT EXISTS smg_changes (channel TEXT PRIMARY KEY, version BIGINT NOT NULL);
CREATE OR REPLACE FUNCTION smg_bump_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v BIGINT;
BEGIN
  INSERT INTO smg_changes (channel, version) VALUES (TG_ARGV[0], 1)
    ON CONFLICT (channel) DO UPDATE SET version = smg_changes.version + 1
    RETURNING version INTO v;
  PERFORM pg_notify(TG_ARGV[0], v::text);
  RETURN NULL;
END $$;
"""


class SchemaTooNew(SmgError):
    """The database was migrated by a newer gateway than this one."""

    code = "schema_too_new"


def change_triggers(table: str, channel: str) -> str:
    """SQL creating the statement-level triggers that bump ``channel`` on every change of ``table``."""
    return (
        f"INSERT INTO smg_changes (channel, version) VALUES ('{channel}', 0) ON CONFLICT DO NOTHING;"
        f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION smg_bump_change('{channel}');"
    )


def change_version(db: psycopg.Connection[Any], channel: str) -> int:
    """The counter of ``channel`` (0 before any change)."""
    row = db.execute("SELECT version FROM smg_changes WHERE channel = %s", (channel,)).fetchone()
    return int(row[0]) if row is not None else 0


def migrate(db: psycopg.Connection[Any], component: str, migrations: Sequence[str]) -> int:
    """Apply the pending ``migrations`` of ``component``, one transaction each (``db`` in autocommit
    mode); the version reached. Raises SchemaTooNew, psycopg.Error."""
    version = 0
    for target, script in enumerate(migrations, start=1):
        with db.transaction():
            version = _locked_version(db, component)
            if version >= target:
                continue
            db.execute(script)
            db.execute(
                "INSERT INTO schema_version (component, version) VALUES (%s, %s)"
                " ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                (component, target),
            )
            version = target
    if not migrations:
        with db.transaction():
            version = _locked_version(db, component)
    if version > len(migrations):
        raise SchemaTooNew(
            f"the database's {component} schema is at version {version}, this gateway knows {len(migrations)}"
        )
    return version


def _locked_version(db: psycopg.Connection[Any], component: str) -> int:
    db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INT NOT NULL)")
    row = db.execute("SELECT version FROM schema_version WHERE component = %s", (component,)).fetchone()
    return int(row[0]) if row is not None else 0
