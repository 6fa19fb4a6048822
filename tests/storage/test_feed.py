"""`ChangeFeed` against a real PostgreSQL server: a change committed by another connection wakes the
listener (no poll in between), and while the database is down the feed polls, then listens again."""

from __future__ import annotations

import asyncio

import pytest

from smg.keys.pg_store import CHANNEL as KEYS_CHANNEL
from smg.keys.pg_store import PgKeyStore
from smg.keys.record import new_record
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.pg_store import CHANNEL, PgRegistry
from smg.postgres.feed import ChangeFeed
from tests.storage._pg import PgServer

pytestmark = pytest.mark.e2e


def _spec(name: str) -> ServerSpec:
    return ServerSpec(name=name, transport="streamable-http", url=f"http://127.0.0.1:9/{name}")


async def test_a_change_by_another_connection_wakes_the_listener(pg_url: str) -> None:
    store = PgRegistry(pg_url)
    seen: list[int] = []
    changed = asyncio.Event()

    async def reload() -> None:
        seen.append(await asyncio.to_thread(store.version))
        changed.set()

    feed = ChangeFeed(pg_url, {CHANNEL: reload}, poll_secs=3600)  # never a poll within this test
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(30):
            await feed.listening.wait()
            await changed.wait()  # the catch-up reload on connecting
            changed.clear()
            await asyncio.to_thread(store.add, _spec("a"))
            await changed.wait()
        assert seen[-1] == await asyncio.to_thread(store.version) != seen[0]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def test_while_the_database_is_down_the_feed_polls_and_then_listens_again(own_pg: PgServer) -> None:
    url = own_pg.new_database()
    store = PgRegistry(url)
    calls = 0
    called = asyncio.Event()

    async def reload() -> None:
        nonlocal calls
        calls += 1
        called.set()

    feed = ChangeFeed(url, {CHANNEL: reload}, poll_secs=0.05)
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(60):
            await feed.listening.wait()
            await asyncio.to_thread(own_pg.stop)
            before = calls
            while calls < before + 3:  # polls while nothing can be listened to
                called.clear()
                await called.wait()
            await asyncio.to_thread(own_pg.start)
            await feed.listening.wait()
            assert [s.name for s in await asyncio.to_thread(store.list)] == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def test_a_slow_reload_of_one_store_does_not_hold_back_another(pg_url: str) -> None:
    registry, keys = PgRegistry(pg_url), PgKeyStore(pg_url)
    stuck = asyncio.Event()  # never set: the registry's reload hangs, as on an MCP server that never answers
    keys_reloaded = asyncio.Event()

    async def slow() -> None:
        await stuck.wait()

    async def reload_keys() -> None:
        keys_reloaded.set()

    feed = ChangeFeed(pg_url, {CHANNEL: slow, KEYS_CHANNEL: reload_keys}, poll_secs=3600)
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(30):
            await feed.listening.wait()
            await keys_reloaded.wait()  # the catch-up reload on connecting
            keys_reloaded.clear()
            await asyncio.to_thread(registry.add, _spec("hangs"))
            record, _ = new_record({"name": "k"}, now=1.0)
            await asyncio.to_thread(keys.add, record)
            await keys_reloaded.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        registry.close()
        keys.close()
