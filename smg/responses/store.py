"""Where stored responses live: the `ResponseStore` seam and its SQLite implementation.

A stored response is the response object, the request's input items and the id of the response it
continued. Beside them, the ``mcp_call`` item each approved call produced is recorded by its approval
request's id as soon as the call has run, so an answer retried after its model round failed reuses the
result instead of running the call again (same TTL and count cap). Rows expire ``ttl_secs`` after
they were stored (an expired row is gone for every reader, and removed at the next write) and past
``max_responses`` the oldest rows are evicted at each write.

Operations are synchronous, one small transaction each (`smg.sqlite_file`; the file is the MCP
registry's by default, in tables of its own); callers on the event loop use ``asyncio.to_thread``. Each is
reported to a `StorageObserver` as ``response_put|get|delete|begin|recover|cancel|cancels_get`` or
``approval_run_put|get``.

A background response is stored when it starts (`begin`: its row, and a mark that it runs, with the
store's owner token) and again when it ends (`put`, which clears the mark); a gateway process that
starts finds the marks whose owner is gone (`smg.responses.owners`: a live sibling's are kept) and stores
those responses failed (`fail_unfinished`). A cancel that reaches a process not running the response
marks it (`request_cancel`); the process running it reads its runs' marks and cancels them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from smg.errors import ResponseNotFound, ResponseStoreError
from smg.responses import owners
from smg.sqlite_file import SqliteFile, StorageObserver

if TYPE_CHECKING:
    from smg.settings import ResponsesSettings

_T = TypeVar("_T")
DEFAULT_TTL_SECS = 30 * 24 * 3600.0
DEFAULT_MAX_RESPONSES = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
  id TEXT PRIMARY KEY, stored_at REAL NOT NULL, previous_id TEXT,
  response BLOB NOT NULL, input_items BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS responses_stored_at ON responses (stored_at);
CREATE TABLE IF NOT EXISTS approval_runs (
  id TEXT PRIMARY KEY, stored_at REAL NOT NULL, item BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS background_runs (
  id TEXT PRIMARY KEY, started_at REAL NOT NULL, owner TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS background_cancels (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS responses_count (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO responses_count SELECT 1, count(*) FROM responses;
CREATE TRIGGER IF NOT EXISTS responses_counted_in AFTER INSERT ON responses
  BEGIN UPDATE responses_count SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS responses_counted_out AFTER DELETE ON responses
  BEGIN UPDATE responses_count SET n = n - 1; END;
"""
# The cap is kept with a row count maintained by triggers (a put never rewrites a row with REPLACE,
# which would not fire them): counting or ordering the table on every put cost ~100-300 us at 10 000 rows.


@dataclass(frozen=True)
class StoredResponse:
    """One stored response: the object as returned, the request's input items (normalised, with ids),
    the id of the response it continued."""

    id: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    previous_id: str | None = None


def stored_row(response_id: str, row: Any, path: str) -> StoredResponse:
    """The response of a ``(previous_id, response, input_items)`` row. Raises ResponseNotFound (None)."""
    if row is None:
        raise ResponseNotFound(response_id)
    try:
        response, items = orjson.loads(row[1]), orjson.loads(row[2])
    except orjson.JSONDecodeError:
        raise ResponseStoreError(f"row {response_id!r} is not valid", path=path) from None
    return StoredResponse(response_id, response, items, row[0])


class ResponseStore(Protocol):
    """Stored responses. Implementations raise ResponseStoreError when their storage fails."""

    def put(self, stored: StoredResponse) -> None:
        """Store ``stored`` (replacing a row of the same id); a background run of that id is over."""
        ...

    def begin(self, stored: StoredResponse) -> None:
        """Store ``stored``, a background response that starts running now: until a `put` of its id,
        `fail_unfinished` finds it."""
        ...

    def fail_unfinished(self, fail: Callable[[dict[str, Any]], dict[str, Any]]) -> list[str]:
        """Replace each begun and not yet put response by ``fail(response)``; their ids. For the
        start of a gateway: what a stopped one left running never finishes."""
        ...

    def request_cancel(self, response_id: str) -> bool:
        """Mark the running background response ``response_id`` to be cancelled by whichever process
        runs it; False when no run of that id is going (it ended, or never ran in the background)."""
        ...

    def cancel_requests(self, response_ids: list[str]) -> list[str]:
        """Those of ``response_ids`` (running background responses) marked by `request_cancel`."""
        ...

    def get(self, response_id: str) -> StoredResponse:
        """The response ``response_id``. Raises ResponseNotFound (also when it expired)."""
        ...

    def delete(self, response_id: str) -> None:
        """Forget ``response_id``. Raises ResponseNotFound."""
        ...

    def put_run(self, approval_request_id: str, item: dict[str, Any]) -> None:
        """Record the ``mcp_call`` item an approved call produced, before the model reads it."""
        ...

    def runs(self, approval_request_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The recorded ``mcp_call`` items of those approval ids that have one."""
        ...


class SqliteResponseStore:
    """`ResponseStore` in one SQLite file (WAL mode; parent directories created)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl_secs: float = DEFAULT_TTL_SECS,
        max_responses: int = DEFAULT_MAX_RESPONSES,
        observer: StorageObserver | None = None,
        clock: Callable[[], float] = time.time,
        busy_timeout_secs: float = 5.0,
    ) -> None:
        if ttl_secs <= 0 or max_responses < 1:
            raise ValueError("ttl_secs and max_responses must be positive")
        self._ttl = ttl_secs
        self._max = max_responses
        self._clock = clock
        self._file = SqliteFile(
            path,
            schema=_SCHEMA,
            error=ResponseStoreError,
            observer=observer,
            busy_timeout_secs=busy_timeout_secs,
            open_operation="response_open",
            upgrade=owners.add_column,  # to a file an older version made
        )
        self.path = self._file.path
        self.owner = owners.new_owner()  # who runs the background responses this store begins

    def close(self) -> None:
        """Its background runs have no living owner any more (a later `fail_unfinished` fails them)."""
        owners.release(self.owner)

    @classmethod
    def configured(
        cls, path: str | os.PathLike[str], settings: ResponsesSettings, observer: StorageObserver
    ) -> SqliteResponseStore:
        """The store at ``path`` with the TTL and count cap of ``settings``."""
        return cls(path, ttl_secs=settings.ttl_secs, max_responses=settings.max_stored, observer=observer)

    def put(self, stored: StoredResponse) -> None:
        self._file.observed("response_put", lambda: self._file.run(self._putter(stored), write=True))

    def begin(self, stored: StoredResponse) -> None:
        put = self._putter(stored)

        def run(db: sqlite3.Connection) -> None:
            put(db)
            db.execute(
                "INSERT OR REPLACE INTO background_runs (id, started_at, owner) VALUES (?, ?, ?)",
                (stored.id, self._clock(), self.owner),
            )

        self._file.observed("response_begin", lambda: self._file.run(run, write=True))

    def fail_unfinished(self, fail: Callable[[dict[str, Any]], dict[str, Any]]) -> list[str]:
        def run(db: sqlite3.Connection) -> list[str]:
            query = "SELECT r.id, r.response, b.owner FROM background_runs b JOIN responses r ON r.id = b.id"
            left = [
                row for row in db.execute(query).fetchall() if not owners.alive(row[2])
            ]  # a live one runs
            for response_id, response, _ in left:
                failed = orjson.dumps(fail(orjson.loads(response)))
                db.execute("UPDATE responses SET response = ? WHERE id = ?", (failed, response_id))
                db.execute("DELETE FROM background_runs WHERE id = ?", (response_id,))
                db.execute("DELETE FROM background_cancels WHERE id = ?", (response_id,))
            return [row[0] for row in left]

        return self._file.observed("response_recover", lambda: self._file.run(run, write=True))

    def _putter(self, stored: StoredResponse) -> Callable[[sqlite3.Connection], None]:
        now = self._clock()

        def run(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO responses (id, stored_at, previous_id, response, input_items)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET stored_at = excluded.stored_at,"
                " previous_id = excluded.previous_id, response = excluded.response,"
                " input_items = excluded.input_items",
                (
                    stored.id,
                    now,
                    stored.previous_id,
                    orjson.dumps(stored.response),
                    orjson.dumps(stored.input_items),
                ),
            )
            db.execute("DELETE FROM responses WHERE stored_at <= ?", (now - self._ttl,))
            (count,) = db.execute("SELECT n FROM responses_count").fetchone()
            if count > self._max:
                db.execute(
                    "DELETE FROM responses WHERE id IN (SELECT id FROM responses"
                    " ORDER BY stored_at, rowid LIMIT ?)",
                    (count - self._max,),
                )
            db.execute("DELETE FROM background_runs WHERE id = ?", (stored.id,))
            db.execute("DELETE FROM background_cancels WHERE id = ?", (stored.id,))

        return run

    def request_cancel(self, response_id: str) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            if db.execute("SELECT 1 FROM background_runs WHERE id = ?", (response_id,)).fetchone() is None:
                return False
            db.execute("INSERT OR IGNORE INTO background_cancels VALUES (?)", (response_id,))
            return True

        return self._file.observed("response_cancel", lambda: self._file.run(run, write=True))

    def cancel_requests(self, response_ids: list[str]) -> list[str]:
        def run(db: sqlite3.Connection) -> list[str]:
            marks = ",".join("?" * len(response_ids))
            rows = db.execute(f"SELECT id FROM background_cancels WHERE id IN ({marks})", response_ids)
            return [row[0] for row in rows.fetchall()]

        return self._file.observed("response_cancels_get", lambda: self._file.run(run))

    def get(self, response_id: str) -> StoredResponse:
        def run(db: sqlite3.Connection) -> StoredResponse:
            row = db.execute(
                "SELECT previous_id, response, input_items FROM responses WHERE id = ? AND stored_at > ?",
                (response_id, self._clock() - self._ttl),
            ).fetchone()
            return stored_row(response_id, row, str(self.path))

        return self._file.observed("response_get", lambda: self._file.run(run))

    def delete(self, response_id: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            cursor = db.execute(
                "DELETE FROM responses WHERE id = ? AND stored_at > ?",
                (response_id, self._clock() - self._ttl),
            )
            if cursor.rowcount == 0:
                raise ResponseNotFound(response_id)

        self._file.observed("response_delete", lambda: self._file.run(run, write=True))

    def put_run(self, approval_request_id: str, item: dict[str, Any]) -> None:
        now = self._clock()

        def run(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO approval_runs (id, stored_at, item) VALUES (?, ?, ?)",
                (approval_request_id, now, orjson.dumps(item)),
            )
            db.execute("DELETE FROM approval_runs WHERE stored_at <= ?", (now - self._ttl,))
            db.execute(
                "DELETE FROM approval_runs WHERE id IN (SELECT id FROM approval_runs"
                " ORDER BY stored_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (self._max,),
            )

        self._file.observed("approval_run_put", lambda: self._file.run(run, write=True))

    def runs(self, approval_request_ids: list[str]) -> dict[str, dict[str, Any]]:
        def run(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            marks = ",".join("?" * len(approval_request_ids))
            rows = db.execute(
                f"SELECT id, item FROM approval_runs WHERE id IN ({marks}) AND stored_at > ?",
                (*approval_request_ids, self._clock() - self._ttl),
            ).fetchall()
            return {row[0]: orjson.loads(row[1]) for row in rows}

        return self._file.observed("approval_run_get", lambda: self._file.run(run))

    def count(self) -> int:
        """Rows stored, expired ones not yet removed included (for tests and operators)."""
        return self._file.run(lambda db: int(db.execute("SELECT count(*) FROM responses").fetchone()[0]))
