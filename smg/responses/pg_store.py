"""`ResponseStore` in PostgreSQL (`--database-url postgresql://...`): the tables of the SQLite store
(``responses``, ``approval_runs``, ``background_runs``), so a chain started on one replica continues on
any other with ``previous_response_id``. TTL and count cap as in SQLite (`smg.responses.store`).

Background runs carry their owner: each store holds a session advisory lock on its owner id (on a
connection of its own) while it lives, and `fail_unfinished` fails only the runs whose owner's lock is
free, i.e. whose gateway stopped: a replica that starts never fails what another replica still runs. An
owner whose lock connection was lost (the database restarted) takes it again at its next `begin`.
A cancel reaching a replica that does not run the response sets the run's ``cancel_requested``
(migration 2); the replica running it reads the marks of its runs and cancels them.
A database that cannot be reached is `ResponseStoreUnavailable` (503).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from smg.errors import ResponseNotFound, ResponseStoreError, ResponseStoreUnavailable
from smg.postgres.database import PgDatabase, connect
from smg.responses.store import DEFAULT_MAX_RESPONSES, DEFAULT_TTL_SECS, StoredResponse, stored_row
from smg.sqlite_file import StorageObserver

if TYPE_CHECKING:
    from smg.settings import ResponsesSettings

OWNER_LOCKS = 7_350_002  # first key of the owners' pg_advisory_lock(OWNER_LOCKS, hashtext(owner))
MIGRATIONS = (
    """CREATE TABLE responses (
  id TEXT PRIMARY KEY, seq BIGSERIAL, stored_at DOUBLE PRECISION NOT NULL, previous_id TEXT,
  response BYTEA NOT NULL, input_items BYTEA NOT NULL);
CREATE INDEX responses_stored_at ON responses (stored_at, seq);
CREATE TABLE approval_runs (
  id TEXT PRIMARY KEY, seq BIGSERIAL, stored_at DOUBLE PRECISION NOT NULL, item BYTEA NOT NULL);
CREATE INDEX approval_runs_stored_at ON approval_runs (stored_at, seq);
CREATE TABLE background_runs (id TEXT PRIMARY KEY, started_at DOUBLE PRECISION NOT NULL, owner TEXT NOT NULL);
""",
    "ALTER TABLE background_runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;",
)
_Db = psycopg.Connection[Any]


class PgResponseStore:
    """`ResponseStore` in the PostgreSQL database at ``url`` (migrated when opened)."""

    def __init__(
        self,
        url: str,
        *,
        ttl_secs: float = DEFAULT_TTL_SECS,
        max_responses: int = DEFAULT_MAX_RESPONSES,
        observer: StorageObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_secs <= 0 or max_responses < 1:
            raise ValueError("ttl_secs and max_responses must be positive")
        self._ttl = ttl_secs
        self._max = max_responses
        self._clock = clock
        self._db = PgDatabase(
            url,
            component="responses",
            migrations=MIGRATIONS,
            error=ResponseStoreError,
            unavailable=ResponseStoreUnavailable,
            observer=observer,
            open_operation="response_open",
        )
        self.path = self._db.where
        self.owner = uuid.uuid4().hex
        self._owner_db: _Db | None = None
        self._owner_lock = threading.Lock()

    @classmethod
    def configured(cls, url: str, settings: ResponsesSettings, observer: StorageObserver) -> PgResponseStore:
        """The store at ``url`` with the TTL and count cap of ``settings``."""
        return cls(url, ttl_secs=settings.ttl_secs, max_responses=settings.max_stored, observer=observer)

    def put(self, stored: StoredResponse) -> None:
        self._db.observed("response_put", lambda: self._db.run(self._putter(stored)))

    def begin(self, stored: StoredResponse) -> None:
        put = self._putter(stored)

        def run(db: _Db) -> None:
            put(db)
            db.execute(
                "INSERT INTO background_runs (id, started_at, owner) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET started_at = EXCLUDED.started_at, owner = EXCLUDED.owner",
                (stored.id, self._clock(), self.owner),
            )

        def begin() -> None:
            self._hold_owner_lock()
            self._db.run(run)

        self._db.observed("response_begin", begin)

    def fail_unfinished(self, fail: Callable[[dict[str, Any]], dict[str, Any]]) -> list[str]:
        def run(db: _Db) -> list[str]:
            rows = db.execute(
                "SELECT r.id, r.response FROM background_runs b JOIN responses r ON r.id = b.id"
                " WHERE b.owner <> %s AND pg_try_advisory_xact_lock(%s, hashtext(b.owner))"
                " FOR UPDATE OF b",
                (self.owner, OWNER_LOCKS),
            ).fetchall()
            ids = [row[0] for row in rows]
            for response_id, response in rows:
                failed = orjson.dumps(fail(orjson.loads(response)))
                db.execute("UPDATE responses SET response = %s WHERE id = %s", (failed, response_id))
            db.execute("DELETE FROM background_runs WHERE id = ANY(%s)", (ids,))
            return ids

        return self._db.observed("response_recover", lambda: self._db.run(run))

    def _putter(self, stored: StoredResponse) -> Callable[[_Db], None]:
        now = self._clock()

        def run(db: _Db) -> None:
            db.execute(
                "INSERT INTO responses (id, stored_at, previous_id, response, input_items)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET stored_at = EXCLUDED.stored_at,"
                " previous_id = EXCLUDED.previous_id, response = EXCLUDED.response,"
                " input_items = EXCLUDED.input_items, seq = DEFAULT",
                (
                    stored.id,
                    now,
                    stored.previous_id,
                    orjson.dumps(stored.response),
                    orjson.dumps(stored.input_items),
                ),
            )
            _trim(db, "responses", now - self._ttl, self._max)
            db.execute("DELETE FROM background_runs WHERE id = %s", (stored.id,))

        return run

    def request_cancel(self, response_id: str) -> bool:
        def run(db: _Db) -> bool:
            cursor = db.execute(
                "UPDATE background_runs SET cancel_requested = TRUE WHERE id = %s", (response_id,)
            )
            return cursor.rowcount > 0

        return self._db.observed("response_cancel", lambda: self._db.run(run))

    def cancel_requests(self, response_ids: list[str]) -> list[str]:
        def run(db: _Db) -> list[str]:
            rows = db.execute(
                "SELECT id FROM background_runs WHERE id = ANY(%s) AND cancel_requested", (response_ids,)
            ).fetchall()
            return [row[0] for row in rows]

        return self._db.observed("response_cancels_get", lambda: self._db.run(run))

    def get(self, response_id: str) -> StoredResponse:
        def run(db: _Db) -> StoredResponse:
            row = db.execute(
                "SELECT previous_id, response, input_items FROM responses WHERE id = %s AND stored_at > %s",
                (response_id, self._clock() - self._ttl),
            ).fetchone()
            return stored_row(response_id, row, self.path)

        return self._db.observed("response_get", lambda: self._db.run(run))

    def delete(self, response_id: str) -> None:
        def run(db: _Db) -> None:
            cursor = db.execute(
                "DELETE FROM responses WHERE id = %s AND stored_at > %s",
                (response_id, self._clock() - self._ttl),
            )
            if cursor.rowcount == 0:
                raise ResponseNotFound(response_id)

        self._db.observed("response_delete", lambda: self._db.run(run))

    def put_run(self, approval_request_id: str, item: dict[str, Any]) -> None:
        now = self._clock()

        def run(db: _Db) -> None:
            db.execute(
                "INSERT INTO approval_runs (id, stored_at, item) VALUES (%s, %s, %s) ON CONFLICT (id)"
                " DO UPDATE SET stored_at = EXCLUDED.stored_at, item = EXCLUDED.item, seq = DEFAULT",
                (approval_request_id, now, orjson.dumps(item)),
            )
            _trim(db, "approval_runs", now - self._ttl, self._max)

        self._db.observed("approval_run_put", lambda: self._db.run(run))

    def runs(self, approval_request_ids: list[str]) -> dict[str, dict[str, Any]]:
        def run(db: _Db) -> dict[str, dict[str, Any]]:
            rows = db.execute(
                "SELECT id, item FROM approval_runs WHERE id = ANY(%s) AND stored_at > %s",
                (approval_request_ids, self._clock() - self._ttl),
            ).fetchall()
            return {row[0]: orjson.loads(row[1]) for row in rows}

        return self._db.observed("approval_run_get", lambda: self._db.run(run))

    def count(self) -> int:
        """Rows stored, expired ones not yet removed included (for tests and operators)."""

        def run(db: _Db) -> int:
            row = db.execute("SELECT count(*) FROM responses").fetchone()
            return int(row[0]) if row is not None else 0

        return self._db.run(run)

    def close(self) -> None:
        """Close the connections this store opened (its owner lock goes with them)."""
        with self._owner_lock:
            held, self._owner_db = self._owner_db, None
        if held is not None:
            with suppress(psycopg.Error):
                held.close()
        self._db.close()

    def _hold_owner_lock(self) -> None:
        with self._owner_lock:
            if self._owner_db is not None:
                try:
                    self._owner_db.execute("SELECT 1")
                    return
                except psycopg.Error:
                    with suppress(psycopg.Error):
                        self._owner_db.close()
                    self._owner_db = None
            try:
                db = connect(self._db.url)
                db.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (OWNER_LOCKS, self.owner))
            except psycopg.Error as exc:
                message = (str(exc).strip() or "cannot connect").splitlines()[0]
                raise ResponseStoreUnavailable(message, path=self.path) from None
            self._owner_db = db


def _trim(db: _Db, table: str, expired: float, keep: int) -> None:
    db.execute(f"DELETE FROM {table} WHERE stored_at <= %s", (expired,))
    db.execute(
        f"DELETE FROM {table} WHERE id IN"
        f" (SELECT id FROM {table} ORDER BY stored_at DESC, seq DESC OFFSET %s)",
        (keep,),
    )
