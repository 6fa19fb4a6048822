"""The gateway's database (`--database-url`): a SQLite file (the default: the MCP registry file) or a
PostgreSQL database that several replicas share (ADR 0015). It builds the registry, key and response
stores on it, and, for PostgreSQL, the change feed that keeps each replica's in-memory views (MCP
registry, key ring) in step with the others'.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from smg.keys.pg_store import CHANNEL as KEYS_CHANNEL
from smg.keys.pg_store import PgKeyStore
from smg.keys.store import KeyStore, SqliteKeyStore
from smg.mcp.registry.pg_store import CHANNEL as REGISTRY_CHANNEL
from smg.mcp.registry.pg_store import PgRegistry
from smg.mcp.registry.store import RegistryStore, SqliteRegistry
from smg.postgres.database import is_postgres_url
from smg.postgres.feed import ChangeFeed, Reload
from smg.responses.pg_store import PgResponseStore
from smg.responses.store import ResponseStore, SqliteResponseStore
from smg.sqlite_file import StorageObserver

if TYPE_CHECKING:
    from smg.settings import ResponsesSettings, Settings

_SQLITE_SCHEME = "sqlite:///"


def database_location(settings: Settings, stack: contextlib.ExitStack | contextlib.AsyncExitStack) -> str:
    """``--database-url`` (``sqlite:///path`` read as the path), else the MCP registry file; with neither
    (tests), a private SQLite file that lives as long as ``stack``."""
    url = settings.server.database_url or settings.mcp.registry_path
    if url is None:
        return str(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smg-mcp-"))) / "mcp.db")
    return url.removeprefix(_SQLITE_SCHEME) if url.startswith(_SQLITE_SCHEME) else url


class Database:
    """The stores on the database at ``location`` (a PostgreSQL URL or a SQLite path). Raises the
    store's own error (e.g. McpRegistryError) when the database cannot be opened or migrated."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.postgres = is_postgres_url(location)
        self.storage_type = "postgres" if self.postgres else "sqlite"
        self._closers: list[PgRegistry | PgKeyStore | PgResponseStore | SqliteResponseStore] = []

    def registry(self, observer: StorageObserver) -> RegistryStore:
        if not self.postgres:
            return SqliteRegistry(self.location, observer=observer)
        store = PgRegistry(self.location, observer=observer)
        self._closers.append(store)
        return store

    def keys(self, observer: StorageObserver) -> KeyStore:
        if not self.postgres:
            return SqliteKeyStore(self.location, observer=observer)
        store = PgKeyStore(self.location, observer=observer)
        self._closers.append(store)
        return store

    def responses(self, settings: ResponsesSettings, observer: StorageObserver) -> ResponseStore:
        store: SqliteResponseStore | PgResponseStore
        if not self.postgres:
            store = SqliteResponseStore.configured(self.location, settings, observer)
        else:
            store = PgResponseStore.configured(self.location, settings, observer)
        self._closers.append(store)  # for SQLite: its background runs' owner token is released
        return store

    @contextlib.asynccontextmanager
    async def watching(self, *, registry: Reload, keys: Reload) -> AsyncIterator[None]:
        """For PostgreSQL, run the change feed (`smg.postgres.feed`) calling ``registry`` or ``keys``
        when another replica changed them, until the block ends; for SQLite nothing (each store's own
        poll of its file's version suffices). Closes the stores' connections at the end."""
        task = None
        if self.postgres:
            reloads: Mapping[str, Reload] = {REGISTRY_CHANNEL: registry, KEYS_CHANNEL: keys}
            task = asyncio.create_task(ChangeFeed(self.location, reloads).run(), name="smg-database-feed")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for store in self._closers:
                store.close()
