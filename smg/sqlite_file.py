"""One SQLite file of the gateway's, as its stores use it (the MCP registry, keys, stored responses).

Each operation is one small transaction (autocommit mode, transactions opened explicitly, so edits by
other processes are seen by the next one) on a connection kept open by the calling thread, in WAL mode
with ``synchronous=NORMAL``, the parent directories created. A connection is opened once per thread
and process (the gateway's store calls run on the default executor's few threads) because opening and
closing one per operation cost about 1 ms of CPU and a WAL checkpoint each time; NORMAL gives up the
last commits on a power cut, never on a crash of the process, and never the file's consistency. A
connection that fails is dropped and the next operation opens a new one.

A failure of SQLite itself is the store's own error (``error(message, path=...)``), an `SmgError`
raised by an operation rolls it back and passes through, and every operation is reported to a
`StorageObserver` with its result (``ok`` or the error's code) and duration.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


def observed(
    observer: StorageObserver, clock: Callable[[], float], operation: str, run: Callable[[], _T]
) -> _T:
    """``run()``, reported to ``observer`` as ``operation`` with its result (``ok``, the `SmgError`'s
    code, or ``error``) and duration: the one way every store's operation is counted."""
    start = clock()
    result = "error"
    try:
        value = run()
        result = "ok"
        return value
    except SmgError as exc:
        result = exc.code
        raise
    finally:
        observer.on_operation(operation, result, clock() - start)


class StoreErrorType(Protocol):
    """The store's own error class: ``error(message, path=...)``."""

    def __call__(self, message: str, *, path: str) -> SmgError: ...


class SqliteFile:
    """The file at ``path``, its ``schema`` (SQL run once, in one transaction, when it is opened) and
    ``upgrade`` (run in that same transaction, after it: what SQL alone cannot say, such as adding a
    column to a table a file of an older version holds)."""

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
        upgrade: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._error = error
        self._observer = observer or NullStorageObserver()
        self._clock = clock
        self._busy_timeout = busy_timeout_secs
        self._local = threading.local()
        self.observed(open_operation, lambda: self._create(schema, upgrade))

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
                self._drop(db)
                raise self._error(str(exc), path=str(self.path)) from None

    def observed(self, operation: str, run: Callable[[], _T]) -> _T:
        """``run()``, reported to the observer as ``operation``."""
        return observed(self._observer, self._clock, operation, run)

    def _create(self, schema: str, upgrade: Callable[[sqlite3.Connection], None] | None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(f"cannot create its directory ({exc.strerror})", path=str(self.path)) from None
        # Processes that open a new file at once (serving processes, replicas) can find it locked while
        # another switches it to WAL, which SQLite answers at once instead of waiting: try again, bounded.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                with self._connection() as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(f"BEGIN IMMEDIATE;{schema}")  # left open for the upgrade
                    if upgrade is not None:
                        upgrade(db)
                    db.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                self._drop(self._thread_connection())
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise self._error(str(exc), path=str(self.path)) from None
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise self._error(str(exc), path=str(self.path)) from None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = self._thread_connection()
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # cancelled or failed midway: never leave a transaction to the next use
                self._drop(db)
            raise

    def _thread_connection(self) -> sqlite3.Connection:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if held is not None and held[0] == os.getpid():  # a forked child never uses its parent's
            return held[1]
        try:
            # Autocommit mode: transactions are opened explicitly in `run`, never implicitly by sqlite3.
            db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise self._error(str(exc), path=str(self.path)) from None
        self._local.db = (os.getpid(), db)
        return db

    def _drop(self, db: sqlite3.Connection) -> None:
        self._local.db = None
        with suppress(sqlite3.Error):
            db.close()
