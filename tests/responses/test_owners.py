"""Owners of background runs in the SQLite store (`smg.responses.owners`): a gateway process that
starts fails only the runs whose owner is gone — a closed store of its own process, or another process
that exited — and keeps a live process's; real processes, a real SQLite file."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from smg.responses import owners
from smg.responses.store import SqliteResponseStore, StoredResponse
from smg.testing.processes import spawn, stop, wait_for_line

FAIL = {"status": "failed"}


def _running(rid: str) -> StoredResponse:
    return StoredResponse(rid, {"id": rid, "status": "in_progress"}, [])


def test_a_token_of_this_process_lives_until_its_store_is_closed(tmp_path: Path) -> None:
    live = SqliteResponseStore(tmp_path / "smg.db")
    closed = SqliteResponseStore(tmp_path / "smg.db")
    live.begin(_running("resp_live"))
    closed.begin(_running("resp_gone"))
    closed.close()
    starting = SqliteResponseStore(tmp_path / "smg.db")
    assert (owners.alive(live.owner), owners.alive(closed.owner)) == (True, False)
    assert starting.fail_unfinished(lambda r: r | FAIL) == ["resp_gone"]
    assert starting.get("resp_live").response["status"] == "in_progress"
    live.close()
    assert starting.fail_unfinished(lambda r: r | FAIL) == ["resp_live"]


def test_a_run_begun_by_another_process_is_kept_while_it_lives_and_failed_after(tmp_path: Path) -> None:
    path = tmp_path / "smg.db"
    script = (
        "import signal, sys\n"
        "from smg.responses.store import SqliteResponseStore, StoredResponse\n"
        "store = SqliteResponseStore(sys.argv[1])\n"
        "store.begin(StoredResponse('resp_other', {'id': 'resp_other', 'status': 'queued'}, []))\n"
        "print('OWNER', store.owner, flush=True)\n"
        "signal.pause()\n"
    )
    other = spawn([sys.executable, "-c", script, str(path)])
    try:
        token = wait_for_line(other, "OWNER")
        pid, start, _ = token.split(":")
        assert int(pid) == other.pid
        starting = SqliteResponseStore(path)
        assert owners.alive(token)
        assert not owners.alive(f"{pid}:{start}0:abc")  # the same pid, another start: a reused pid
        assert starting.fail_unfinished(lambda r: r | FAIL) == []
        assert starting.get("resp_other").response["status"] == "queued"
    finally:
        stop(other)
    assert not owners.alive(token)
    assert starting.fail_unfinished(lambda r: r | FAIL) == ["resp_other"]
    assert starting.get("resp_other").response["status"] == "failed"


def test_a_file_of_an_older_version_gains_the_owner_column_and_its_runs_have_no_owner(
    tmp_path: Path,
) -> None:
    path = tmp_path / "smg.db"
    with sqlite3.connect(path) as db:  # the tables as the version before owners made them
        db.execute(
            "CREATE TABLE responses (id TEXT PRIMARY KEY, stored_at REAL NOT NULL, previous_id TEXT,"
            " response BLOB NOT NULL, input_items BLOB NOT NULL)"
        )
        db.execute("CREATE TABLE background_runs (id TEXT PRIMARY KEY, started_at REAL NOT NULL)")
        db.execute("INSERT INTO responses VALUES ('resp_old', 9e9, NULL, '{\"id\":\"resp_old\"}', '[]')")
        db.execute("INSERT INTO background_runs VALUES ('resp_old', 1)")
    db.close()
    store = SqliteResponseStore(path)
    store.begin(_running("resp_new"))
    assert store.fail_unfinished(lambda r: r | FAIL) == ["resp_old"]
    assert store.get("resp_new").response["status"] == "in_progress"


def test_tokens_that_cannot_be_read_have_no_living_owner() -> None:
    for token in ("", "gone", "x:1:abc", "123", f"{owners.new_owner()}x"):
        assert not owners.alive(token)
