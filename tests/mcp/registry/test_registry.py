"""SqliteRegistry: registrations persist, conflicts are refused, offline edits move version()."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from smg.mcp import (
    McpRegistryError,
    McpServerExists,
    McpServerNotFound,
    RegistryStore,
    ServerSpec,
    SqliteRegistry,
    default_registry_path,
)


def _spec(name: str, **kw: Any) -> ServerSpec:
    return ServerSpec(name=name, transport="stdio", command="python", args=("-m", name), **kw)


class RecordingObserver:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []

    def on_operation(self, operation: str, result: str, duration: float) -> None:
        self.calls.append((operation, result, duration))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "smg" / "mcp.db"


def test_added_servers_are_listed_by_name_and_fetched_exactly(db_path: Path) -> None:
    registry: RegistryStore = SqliteRegistry(db_path)
    clock = _spec("clock", headers={"Authorization": "Bearer ${T}"}, aliases={"now": "current_time"})
    registry.add(_spec("notes"))
    registry.add(clock)
    assert [s.name for s in registry.list()] == ["clock", "notes"]
    assert registry.get("clock") == clock


def test_adding_a_taken_name_is_refused(db_path: Path) -> None:
    registry = SqliteRegistry(db_path)
    registry.add(_spec("clock"))
    with pytest.raises(McpServerExists) as info:
        registry.add(_spec("clock", required=True))
    assert (info.value.code, info.value.status) == ("mcp_server_exists", 409)
    assert registry.get("clock").required is False


def test_unknown_server_is_not_found_on_get_and_remove(db_path: Path) -> None:
    registry = SqliteRegistry(db_path)
    with pytest.raises(McpServerNotFound) as info:
        registry.get("ghost")
    assert (info.value.code, info.value.status) == ("mcp_server_not_found", 404)
    with pytest.raises(McpServerNotFound):
        registry.remove("ghost")


def test_removed_server_is_gone(db_path: Path) -> None:
    registry = SqliteRegistry(db_path)
    registry.add(_spec("clock"))
    registry.remove("clock")
    assert registry.list() == []


def test_registrations_survive_a_restart(db_path: Path) -> None:
    SqliteRegistry(db_path).add(_spec("clock", expose="always"))
    reopened = SqliteRegistry(db_path)
    assert reopened.get("clock") == _spec("clock", expose="always")


def test_file_is_in_wal_mode_and_its_directories_are_created(db_path: Path) -> None:
    SqliteRegistry(db_path)
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_version_moves_when_another_instance_edits_the_same_file(db_path: Path) -> None:
    gateway = SqliteRegistry(db_path)
    cli = SqliteRegistry(db_path)
    start = gateway.version()
    assert gateway.version() == start
    cli.add(_spec("clock"))
    after_add = gateway.version()
    assert after_add != start
    cli.remove("clock")
    assert gateway.version() not in (start, after_add)
    assert gateway.list() == []


def test_version_moves_on_a_hand_edit_with_plain_sqlite(db_path: Path) -> None:
    registry = SqliteRegistry(db_path)
    registry.add(_spec("clock"))
    before = registry.version()
    with sqlite3.connect(db_path) as db:
        db.execute("DELETE FROM servers")
    db.close()
    assert registry.version() != before


def test_failed_edits_leave_version_unchanged(db_path: Path) -> None:
    registry = SqliteRegistry(db_path)
    registry.add(_spec("clock"))
    before = registry.version()
    with pytest.raises(McpServerExists):
        registry.add(_spec("clock"))
    with pytest.raises(McpServerNotFound):
        registry.remove("ghost")
    assert registry.version() == before


def test_a_corrupt_row_is_a_registry_error_not_a_client_error(db_path: Path) -> None:
    registry = SqliteRegistry(db_path)
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO servers (name, spec) VALUES ('bad', '{\"name\": 1}')")
    db.close()
    with pytest.raises(McpRegistryError) as info:
        registry.list()
    assert info.value.status == 500


def test_a_file_that_is_not_a_database_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "mcp.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(McpRegistryError) as info:
        SqliteRegistry(path)
    assert info.value.code == "mcp_registry_error"


def test_observer_hears_every_operation_with_its_result_and_duration(db_path: Path) -> None:
    ticks = iter(range(100))
    observer = RecordingObserver()
    registry = SqliteRegistry(db_path, observer=observer, clock=lambda: float(next(ticks)))
    registry.add(_spec("clock"))
    with pytest.raises(McpServerExists):
        registry.add(_spec("clock"))
    registry.get("clock")
    registry.list()
    registry.version()
    with pytest.raises(McpServerNotFound):
        registry.remove("ghost")
    assert observer.calls == [
        ("open", "ok", 1.0),
        ("add", "ok", 1.0),
        ("add", "mcp_server_exists", 1.0),
        ("get", "ok", 1.0),
        ("list", "ok", 1.0),
        ("version", "ok", 1.0),
        ("remove", "mcp_server_not_found", 1.0),
    ]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SMG_MCP_REGISTRY": "/srv/smg/reg.db", "XDG_STATE_HOME": "/x"}, "/srv/smg/reg.db"),
        ({"SMG_MCP_REGISTRY": "", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/smg/mcp.db"),
        ({"XDG_STATE_HOME": "relative/dir", "HOME": "/h"}, "/h/.local/state/smg/mcp.db"),
        ({"HOME": "/h"}, "/h/.local/state/smg/mcp.db"),
    ],
)
def test_default_registry_path_follows_smg_then_xdg_then_home(environ: dict[str, str], expected: str) -> None:
    assert default_registry_path(environ) == Path(expected)
