"""One PostgreSQL database as a store of the gateway's uses it (the MCP registry, keys, stored responses).

Each operation is one transaction on a connection kept open by the calling thread (the gateway's store
calls run on the default executor's few threads, off the event loop), opened with a short connect
timeout: a database that is down fails the operation at once instead of holding a thread. A connection
that fails is dropped and the next operation opens a new one, so the store recovers by itself when the
database is back.

A failure to reach the database (refused, timed out, connection lost) is the store's ``unavailable``
error (503, the store's own code); any other database failure its ``error`` (500); an `SmgError` raised
by an operation rolls it back and passes through. Every operation is reported to a `StorageObserver`
with its result (``ok`` or the error's code) and duration. Messages name the database without its
password.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

from smg.errors import SmgError
from smg.postgres.migrate import migrate
from smg.sqlite_file import NullStorageObserver, StorageObserver, StoreErrorType, observed

_T = TypeVar("_T")
_Db = psycopg.Connection[tuple[object, ...]]
CONNECT_TIMEOUT_SECS = 2


def is_postgres_url(value: str) -> bool:
    """Whether ``value`` names a PostgreSQL database rather than a SQLite file."""
    return value.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}{netloc}", parts.path, parts.query, parts.fragment))


def connect(url: str) -> _Db:
    """An autocommit connection to ``url`` (transactions are opened explicitly). Raises psycopg.Error."""
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECS)


class PgDatabase:
    """The database at ``url``; ``migrations`` of ``component`` applied when it is opened
    (`smg.postgres.migrate`)."""

    def __init__(
        self,
        url: str,
        *,
        component: str,
        migrations: Sequence[str],
        error: StoreErrorType,
        unavailable: StoreErrorType,
        observer: StorageObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
        open_operation: str = "open",
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self._error = error
        self._unavailable = unavailable
        self._observer = observer or NullStorageObserver()
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[_Db] = []
        try:
            self.observed(open_operation, lambda: self._call(lambda db: migrate(db, component, migrations)))
        except BaseException:
            self.close()
            raise

    def run(self, operation: Callable[[_Db], _T]) -> _T:
        """``operation(db)`` in one transaction. A kept connection found dead when the transaction begins
        (the database restarted since its last use) is replaced once: nothing of the operation was sent."""
        return self._call(operation, transaction=True)

    def _call(self, operation: Callable[[_Db], _T], *, transaction: bool = False) -> _T:
        db = self._begin(transaction)
        try:
            result = operation(db)
            if transaction:
                db.execute("COMMIT")
            return result
        except SmgError:
            if transaction:
                self._rollback(db)
            raise
        except psycopg.OperationalError as exc:
            self._drop(db)
            raise self._unavailable(_first_line(exc), path=self.where) from None
        except psycopg.Error as exc:
            if db.broken or db.closed:
                self._drop(db)
            elif transaction:
                self._rollback(db)
            raise self._error(_first_line(exc), path=self.where) from None
        except BaseException:  # cancelled midway: never leave a half-used connection to the next caller
            self._drop(db)
            raise

    def _begin(self, transaction: bool) -> _Db:
        db, kept = self._thread_connection()
        if not transaction:
            return db
        try:
            db.execute("BEGIN")
            return db
        except psycopg.Error as exc:
            self._drop(db)
            if not kept or not isinstance(exc, psycopg.OperationalError):
                raise self._unavailable(_first_line(exc), path=self.where) from None
        db, _ = self._thread_connection()
        try:
            db.execute("BEGIN")
        except psycopg.Error as exc:
            self._drop(db)
            raise self._unavailable(_first_line(exc), path=self.where) from None
        return db

    def _rollback(self, db: _Db) -> None:
        try:
            db.execute("ROLLBACK")
        except psycopg.Error:
            self._drop(db)

    def observed(self, operation: str, run: Callable[[], _T]) -> _T:
        """``run()``, reported to the observer as ``operation``."""
        return observed(self._observer, self._clock, operation, run)

    def close(self) -> None:
        """Close every connection this database opened (each thread's)."""
        with self._lock:
            held, self._open = self._open, []
        for db in held:
            with suppress(psycopg.Error):
                db.close()

    def _thread_connection(self) -> tuple[_Db, bool]:
        """This thread's connection, and whether it was kept from an earlier operation."""
        held: tuple[int, _Db] | None = getattr(self._local, "db", None)
        if held is not None and held[0] == os.getpid() and not held[1].closed:
            return held[1], True
        try:
            db = connect(self.url)
        except psycopg.Error as exc:
            raise self._unavailable(_first_line(exc), path=self.where) from None
        self._local.db = (os.getpid(), db)
        with self._lock:
            self._open.append(db)
        return db, False

    def _drop(self, db: _Db) -> None:
        self._local.db = None
        with self._lock:
            if db in self._open:
                self._open.remove(db)
        with suppress(psycopg.Error):
            db.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
