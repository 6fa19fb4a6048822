"""One SQLite file of the gateway's, as its stores use it (the MCP registry, stored responses).

Each operation is one small transaction on a connection opened for it (autocommit mode, transactions
opened explicitly; safe from any thread, and edits by other processes are always seen), in WAL mode,
the parent directories created. A failure of SQLite itself is the store's own error (``error(message,
path=...)``), an `SmgError` raised by an operation rolls it back and passes through, and every operation
is reported to a `StorageObserver` with its result (``ok`` or the error's code) and duration.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from smg.errors import SmgError

_T = TypeVar("_T")


class StorageObserver(Protocol):
    """Telemetry seam: told about every storage operation (``result`` is "ok" or an error code)."""

    def on_operation(self, operation: str, result: str, duration: float) -> None: ...


class NullStorageObserver:
    """Observer that records nothing."""

    def on_operation(self, operation: str, result: str, duration: float) -> None:
        pass


class StoreErrorType(Protocol):
    """The store's own error class: ``error(message, path=...)``."""

    def __call__(self, message: str, *, path: str) -> SmgError: ...


class SqliteFile:
    """The file at ``path``, its ``schema`` (SQL run once, in one transaction, when it is opened)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        schema: str,
        error: StoreErrorType,
        observer: StorageObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
        busy_timeout_secs: float = 5.0,
        open_operation: str = "open",
    ) -> None:
        self.path = Path(path)
        self._error = error
        self._observer = observer or NullStorageObserver()
        self._clock = clock
        self._busy_timeout = busy_timeout_secs
        self.observed(open_operation, lambda: self._create(schema))

    def run(self, operation: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        """``operation(db)`` in one transaction (``BEGIN IMMEDIATE`` when it writes)."""
        with self._connection() as db:
            try:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = operation(db)
                except SmgError:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise self._error(str(exc), path=str(self.path)) from None

    def observed(self, operation: str, run: Callable[[], _T]) -> _T:
        """``run()``, reported to the observer as ``operation``."""
        start = self._clock()
        result = "error"
        try:
            value = run()
            result = "ok"
            return value
        except SmgError as exc:
            result = exc.code
            raise
        finally:
            self._observer.on_operation(operation, result, self._clock() - start)

    def _create(self, schema: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(f"cannot create its directory ({exc.strerror})", path=str(self.path)) from None
        with self._connection() as db:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(f"BEGIN IMMEDIATE;{schema}COMMIT;")
            except sqlite3.Error as exc:
                raise self._error(str(exc), path=str(self.path)) from None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            # Autocommit mode: transactions are opened explicitly in `run`, never implicitly by sqlite3.
            db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(str(exc), path=str(self.path)) from None
        with closing(db):
            yield db
