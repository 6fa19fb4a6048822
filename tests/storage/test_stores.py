"""The store contracts, held by the SQLite and the PostgreSQL implementations alike (a real PostgreSQL
server, `tests.storage._pg`), and what only PostgreSQL adds: versioned migrations safe under concurrent
start-up, change counters bumped by every change, 503 while the database is down and recovery after."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from smg.errors import (
    KeyExists,
    KeyNotFound,
    KeyStoreUnavailable,
    ResponseNotFound,
    ResponseStoreUnavailable,
    SmgError,
)
from smg.keys.pg_store import PgKeyStore
from smg.keys.record import new_record
from smg.keys.store import KeyStore, SqliteKeyStore
from smg.mcp.errors import McpRegistryUnavailable, McpServerExists, McpServerNotFound
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.pg_store import PgRegistry
from smg.mcp.registry.store import RegistryStore, SqliteRegistry
from smg.postgres.migrate import SchemaTooNew, migrate
from smg.responses.pg_store import MIGRATIONS as RESPONSE_MIGRATIONS
from smg.responses.pg_store import PgResponseStore
from smg.responses.store import ResponseStore, SqliteResponseStore, StoredResponse
from tests.storage._pg import PgServer

pytestmark = pytest.mark.e2e  # the PostgreSQL cases start a real server

Open = Callable[[type], Any]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``opener(kind, **kw)`` -> a store of ``kind`` ("registry", "keys", "responses") on one database."""
    opened: list[Any] = []
    if request.param == "sqlite":
        path = tmp_path / "smg.db"
        classes: dict[str, Any] = {
            "registry": SqliteRegistry,
            "keys": SqliteKeyStore,
            "responses": SqliteResponseStore,
        }
        where: Any = path
    else:
        where = request.getfixturevalue("pg_url")
        classes = {"registry": PgRegistry, "keys": PgKeyStore, "responses": PgResponseStore}

    def open_store(kind: str, **kw: Any) -> Any:
        store = classes[kind](where, **kw)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        getattr(store, "close", lambda: None)()


def _spec(name: str) -> ServerSpec:
    return ServerSpec(name=name, transport="streamable-http", url=f"http://127.0.0.1:9/{name}")


def test_registry_contract(opener: Callable[..., Any]) -> None:
    store: RegistryStore = opener("registry")
    other: RegistryStore = opener("registry")  # another replica (or process) on the same database
    before = other.version()
    store.add(_spec("b"))
    store.add(_spec("a"))
    assert [s.name for s in other.list()] == ["a", "b"]
    assert other.get("a") == _spec("a")
    assert other.version() != before
    with pytest.raises(McpServerExists):
        other.add(_spec("a"))
    moved = store.version()
    other.remove("a")
    assert store.version() != moved
    with pytest.raises(McpServerNotFound):
        store.get("a")
    with pytest.raises(McpServerNotFound):
        store.remove("a")


def test_key_store_contract(opener: Callable[..., Any]) -> None:
    store: KeyStore = opener("keys")
    other: KeyStore = opener("keys")
    record, _secret = new_record({"name": "ci", "models": ["m"], "rpm": 5}, now=100.0)
    before = other.version()
    store.add(record)
    assert other.get("ci") == record
    assert other.version() != before
    with pytest.raises(KeyExists):
        other.add(record)
    revoked = other.revoke("ci", at=200.0)
    assert revoked.revoked_at == 200.0
    assert store.revoke("ci", at=300.0).revoked_at == 200.0  # the first time is kept
    assert [r.name for r in store.list()] == ["ci"]
    with pytest.raises(KeyNotFound):
        store.revoke("nobody", at=1.0)


def test_response_store_contract(opener: Callable[..., Any]) -> None:
    now = [1000.0]
    store: ResponseStore = opener("responses", clock=lambda: now[0], ttl_secs=100, max_responses=2)
    other: ResponseStore = opener("responses", clock=lambda: now[0], ttl_secs=100, max_responses=2)
    first = StoredResponse("resp_1", {"id": "resp_1", "output": []}, [{"type": "message"}])
    store.put(first)
    assert other.get("resp_1") == first
    second = StoredResponse("resp_2", {"id": "resp_2"}, [], previous_id="resp_1")
    other.put(second)
    assert store.get("resp_2").previous_id == "resp_1"
    now[0] += 1
    store.put(StoredResponse("resp_3", {"id": "resp_3"}, []))  # past the cap of 2: the oldest goes
    with pytest.raises(ResponseNotFound):
        other.get("resp_1")
    now[0] += 200  # past the TTL
    with pytest.raises(ResponseNotFound):
        store.get("resp_3")
    other.put_run("apr_1", {"type": "mcp_call", "output": "x"})
    assert store.runs(["apr_1", "apr_2"]) == {"apr_1": {"type": "mcp_call", "output": "x"}}
    store.put(StoredResponse("resp_4", {"id": "resp_4"}, []))
    other.delete("resp_4")
    with pytest.raises(ResponseNotFound):
        store.delete("resp_4")


def test_a_cancel_marked_through_one_store_is_read_by_the_store_running_it(
    opener: Callable[..., Any],
) -> None:
    running: ResponseStore = opener("responses")
    other: ResponseStore = opener("responses")  # another process or replica on the same database
    for rid in ("resp_a", "resp_b"):
        running.begin(StoredResponse(rid, {"id": rid, "status": "queued"}, []))
    assert running.cancel_requests(["resp_a", "resp_b"]) == []
    assert other.request_cancel("resp_a") is True
    assert other.request_cancel("resp_a") is True  # marking again changes nothing
    assert running.cancel_requests(["resp_a", "resp_b"]) == ["resp_a"]
    running.put(StoredResponse("resp_a", {"id": "resp_a", "status": "cancelled"}, []))
    assert running.cancel_requests(["resp_a", "resp_b"]) == []  # the mark ends with its run
    assert other.request_cancel("resp_a") is False  # it ended: nothing runs it
    running.put(StoredResponse("resp_plain", {"id": "resp_plain", "status": "completed"}, []))
    assert other.request_cancel("resp_plain") is False
    assert other.request_cancel("resp_unknown") is False


def test_a_database_at_the_first_responses_schema_is_migrated_to_the_cancel_mark(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert migrate(db, "responses", RESPONSE_MIGRATIONS[:1]) == 1  # as an older gateway left it
        db.execute("INSERT INTO background_runs (id, started_at, owner) VALUES ('resp_old', 1, 'gone')")
    store = PgResponseStore(pg_url)
    try:
        assert store.cancel_requests(["resp_old"]) == []
        assert store.request_cancel("resp_old") is True
        assert store.cancel_requests(["resp_old"]) == ["resp_old"]
        with psycopg.connect(pg_url) as db:
            row = db.execute("SELECT version FROM schema_version WHERE component = 'responses'").fetchone()
        assert row == (len(RESPONSE_MIGRATIONS),)
    finally:
        store.close()


def test_a_stopped_owners_background_run_is_failed_but_a_live_replicas_is_not(pg_url: str) -> None:
    live = PgResponseStore(pg_url)
    stopped = PgResponseStore(pg_url)
    starting = PgResponseStore(pg_url)
    try:
        live.begin(StoredResponse("resp_live", {"id": "resp_live", "status": "in_progress"}, []))
        stopped.begin(StoredResponse("resp_gone", {"id": "resp_gone", "status": "in_progress"}, []))
        stopped.close()  # its gateway stopped: its lock connection is gone
        failed = starting.fail_unfinished(lambda r: {**r, "status": "failed"})
        assert failed == ["resp_gone"]
        assert starting.get("resp_gone").response["status"] == "failed"
        assert starting.get("resp_live").response["status"] == "in_progress"
    finally:
        live.close()
        starting.close()


def test_replicas_that_start_at_once_migrate_an_empty_database_once(pg_url: str) -> None:
    stores: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start(cls: type) -> None:
        barrier.wait(30)
        try:
            stores.append(cls(pg_url))
        except (SmgError, psycopg.Error) as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=start, args=(cls,)) for cls in (PgRegistry, PgKeyStore, PgResponseStore) * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert len(stores) == 6
        with psycopg.connect(pg_url) as db:
            rows = db.execute("SELECT component, version FROM schema_version ORDER BY component").fetchall()
        assert rows == [("keys", 1), ("registry", 1), ("responses", len(RESPONSE_MIGRATIONS))]
    finally:
        for store in stores:
            store.close()


def test_a_database_migrated_by_a_newer_gateway_is_refused(pg_url: str) -> None:
    PgRegistry(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = 99 WHERE component = 'registry'")
    with pytest.raises(SchemaTooNew):
        PgRegistry(pg_url)


def test_a_database_that_goes_away_is_503_and_comes_back_without_a_restart(own_pg: PgServer) -> None:
    url = own_pg.new_database()
    registry, keys, responses = PgRegistry(url), PgKeyStore(url), PgResponseStore(url)
    idle = PgKeyStore(url)  # its connection, kept from its start, is not used during the outage
    try:
        registry.add(_spec("kept"))
        own_pg.stop()
        for call, error in (
            (registry.list, McpRegistryUnavailable),
            (keys.list, KeyStoreUnavailable),
            (lambda: responses.get("resp_x"), ResponseStoreUnavailable),
        ):
            with pytest.raises(error) as info:
                call()
            assert info.value.status == 503
            assert "password" not in info.value.message
        own_pg.start()
        assert idle.list() == []  # its dead connection is replaced, not the caller's error
        assert [s.name for s in registry.list()] == ["kept"]  # nothing lost
        assert keys.list() == []
        with pytest.raises(ResponseNotFound):
            responses.get("resp_x")
    finally:
        for store in (registry, keys, responses, idle):
            store.close()
