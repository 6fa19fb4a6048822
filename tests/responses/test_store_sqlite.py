"""SqliteResponseStore: rows survive a reopen, expire after the TTL, and the oldest go past the cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from smg.errors import ResponseNotFound, ResponseStoreError
from smg.responses.store import SqliteResponseStore, StoredResponse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stored(response_id: str, previous: str | None = None) -> StoredResponse:
    item = {"id": f"msg_{response_id}", "type": "message", "role": "user", "content": []}
    return StoredResponse(response_id, {"id": response_id, "output": []}, [item], previous)


def test_a_row_survives_reopening_the_file(tmp_path: Path) -> None:
    SqliteResponseStore(tmp_path / "db" / "smg.db").put(stored("resp_a", previous="resp_0"))
    again = SqliteResponseStore(tmp_path / "db" / "smg.db").get("resp_a")
    assert again == stored("resp_a", previous="resp_0")


def test_a_row_expires_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteResponseStore(tmp_path / "smg.db", ttl_secs=60, clock=clock)
    store.put(stored("resp_a"))
    clock.now += 59
    assert store.get("resp_a").id == "resp_a"
    clock.now += 1
    with pytest.raises(ResponseNotFound):
        store.get("resp_a")
    with pytest.raises(ResponseNotFound):
        store.delete("resp_a")
    store.put(stored("resp_b"))  # a write removes what expired
    assert store.count() == 1


def test_past_the_cap_the_oldest_rows_are_evicted(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteResponseStore(tmp_path / "smg.db", max_responses=2, clock=clock)
    for name in ("resp_1", "resp_2", "resp_3"):
        clock.now += 1
        store.put(stored(name))
    assert store.count() == 2
    with pytest.raises(ResponseNotFound):
        store.get("resp_1")
    assert [store.get(n).id for n in ("resp_2", "resp_3")] == ["resp_2", "resp_3"]


def test_delete_removes_the_row_and_an_unknown_id_is_not_found(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "smg.db")
    store.put(stored("resp_a"))
    store.delete("resp_a")
    with pytest.raises(ResponseNotFound) as caught:
        store.delete("resp_a")
    assert caught.value.code == "response_not_found"


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "smg.db"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ResponseStoreError) as caught:
        SqliteResponseStore(path)
    assert caught.value.status == 500
    assert str(path) in caught.value.message


@pytest.mark.parametrize(("ttl", "cap"), [(0, 10), (10, 0)])
def test_bounds_must_be_positive(tmp_path: Path, ttl: float, cap: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqliteResponseStore(tmp_path / "smg.db", ttl_secs=ttl, max_responses=cap)


def test_a_recorded_approval_run_survives_a_reopen_expires_and_is_capped(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "smg.db"
    store = SqliteResponseStore(path, ttl_secs=60, max_responses=2, clock=clock)
    assert store.runs(["mcpr_a"]) == {}
    store.put_run("mcpr_a", {"type": "mcp_call", "output": "a"})
    again = SqliteResponseStore(path, ttl_secs=60, max_responses=2, clock=clock)
    assert again.runs(["mcpr_a", "mcpr_x"]) == {"mcpr_a": {"type": "mcp_call", "output": "a"}}
    clock.now += 1
    store.put_run("mcpr_b", {"output": "b"})
    clock.now += 1
    store.put_run("mcpr_c", {"output": "c"})  # past the cap: the oldest goes
    assert set(store.runs(["mcpr_a", "mcpr_b", "mcpr_c"])) == {"mcpr_b", "mcpr_c"}
    clock.now += 59
    assert set(store.runs(["mcpr_b", "mcpr_c"])) == {"mcpr_c"}  # b was recorded 60 s ago


def test_storing_an_id_again_replaces_it_and_counts_it_once(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteResponseStore(tmp_path / "smg.db", max_responses=2, clock=clock)
    for name in ("resp_a", "resp_a", "resp_a", "resp_b"):
        clock.now += 1
        store.put(stored(name))
    assert store.count() == 2
    assert [store.get(n).id for n in ("resp_a", "resp_b")] == ["resp_a", "resp_b"]


def test_a_file_written_before_the_row_count_existed_is_counted_when_opened(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "smg.db"
    clock = Clock()
    store = SqliteResponseStore(path, max_responses=10, clock=clock)
    for name in ("resp_1", "resp_2", "resp_3"):
        clock.now += 1
        store.put(stored(name))
    with sqlite3.connect(path) as db:  # as an older gateway left it: no count table, no triggers
        db.executescript(
            "DROP TRIGGER responses_counted_in; DROP TRIGGER responses_counted_out;"
            " DROP TABLE responses_count;"
        )
    reopened = SqliteResponseStore(path, max_responses=2, clock=clock)
    clock.now += 1
    reopened.put(stored("resp_4"))
    assert reopened.count() == 2
    assert [reopened.get(n).id for n in ("resp_3", "resp_4")] == ["resp_3", "resp_4"]
