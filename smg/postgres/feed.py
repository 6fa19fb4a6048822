"""`ChangeFeed`: tells a replica, within about a second, that another one changed a shared store.

Each store's changes bump a counter and send ``NOTIFY <channel>`` in the same transaction
(`smg.postgres.migrate.CHANGES_SQL`). The feed LISTENs on every channel on one asynchronous connection of
its own and, on a notification, has that channel's ``reload`` run (the store's ``sync``, which compares the
counter and reloads only when it moved). Each channel reloads in a task of its own, so a slow reload of one
(the registry's connects new MCP servers) never delays another's (a revoked key), and notifications that
arrive while a reload runs are folded into one more. When the feed connects (again) it reloads every
channel once, for what it missed. While the listen connection cannot be had it falls back to a poll: every
``poll_secs`` each channel is reloaded, and a connection is tried again. A failing ``reload`` is logged; the
feed goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import psycopg
from psycopg import sql

from smg.errors import SmgError
from smg.postgres.database import CONNECT_TIMEOUT_SECS, redacted

log = logging.getLogger("smg.database")
POLL_SECS = 1.0

Reload = Callable[[], Awaitable[object]]


class ChangeFeed:
    """LISTEN on the channels of ``reloads`` (channel -> reload) at ``url``, polling when it cannot."""

    def __init__(self, url: str, reloads: Mapping[str, Reload], *, poll_secs: float = POLL_SECS) -> None:
        self._url = url
        self._reloads = dict(reloads)
        self._poll = poll_secs
        self.listening = asyncio.Event()  # set while the listen connection is up (tests, logs)
        self._dirty = {channel: asyncio.Event() for channel in self._reloads}

    async def run(self) -> None:
        """Forever: listen while the database is reachable, poll while it is not."""
        async with asyncio.TaskGroup() as group:
            for channel in self._reloads:
                group.create_task(self._reloader(channel), name=f"smg-database-reload-{channel}")
            await self._connect_loop()

    async def _connect_loop(self) -> None:
        down_logged = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECS
                )
            except psycopg.Error as exc:
                if not down_logged:
                    log.warning("database change feed %s: %s; polling", redacted(self._url), exc)
                    down_logged = True
                self._reload_all()
                await asyncio.sleep(self._poll)
                continue
            down_logged = False
            try:
                async with conn:
                    await self._listen(conn)
            except psycopg.Error as exc:
                log.warning("database change feed %s lost: %s; polling", redacted(self._url), exc)
                down_logged = True
            finally:
                self.listening.clear()

    async def _listen(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        for channel in self._reloads:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.listening.set()
        self._reload_all()  # what changed while nobody listened
        while True:
            heard = False
            async for note in conn.notifies(timeout=self._poll):
                heard = True
                if note.channel in self._dirty:
                    self._dirty[note.channel].set()
            if not heard:  # quiet for a poll period: make sure the connection is still alive
                await conn.execute("SELECT 1")

    def _reload_all(self) -> None:
        for dirty in self._dirty.values():
            dirty.set()

    async def _reloader(self, channel: str) -> None:
        reload, dirty = self._reloads[channel], self._dirty[channel]
        while True:
            await dirty.wait()
            dirty.clear()
            try:
                await reload()
            except SmgError as exc:
                log.error("reloading %s after a database change: %s", channel, exc.message)
