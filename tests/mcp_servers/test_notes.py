"""The notes server, in process, over a SQLite file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_servers.notes import build_server, default_db_path
from tests.mcp_servers._helpers import text_of


async def test_added_notes_persist_across_server_instances(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "notes.db"
    async with Client(build_server(db_path=db)) as client:
        added = await client.call_tool("add", {"text": "  buy milk ", "tags": ["shopping", "shopping", " "]})
    assert added.structured_content is not None
    assert added.structured_content["text"] == "buy milk"
    assert added.structured_content["tags"] == ["shopping"]

    async with Client(build_server(db_path=db)) as client:
        listed = await client.call_tool("list", {})
    assert listed.structured_content == {"result": [added.structured_content]}


async def test_list_returns_newest_first_up_to_limit(tmp_path: Path) -> None:
    async with Client(build_server(db_path=tmp_path / "notes.db")) as client:
        for text in ("one", "two", "three"):
            await client.call_tool("add", {"text": text})
        listed = await client.call_tool("list", {"limit": 2})
        too_many = await client.call_tool("list", {"limit": 1000})
    assert listed.structured_content is not None
    assert [note["text"] for note in listed.structured_content["result"]] == ["three", "two"]
    assert too_many.is_error and "limit" in text_of(too_many)


async def test_search_matches_text_or_tags_case_insensitively(tmp_path: Path) -> None:
    async with Client(build_server(db_path=tmp_path / "notes.db")) as client:
        await client.call_tool("add", {"text": "Call the DENTIST", "tags": ["health"]})
        await client.call_tool("add", {"text": "water plants", "tags": ["Garden"]})
        await client.call_tool("add", {"text": "100% done_ok"})
        by_text = await client.call_tool("search", {"query": "dentist"})
        by_tag = await client.call_tool("search", {"query": "garden"})
        wildcard = await client.call_tool("search", {"query": "%"})
        underscore = await client.call_tool("search", {"query": "e_o"})
        empty = await client.call_tool("search", {"query": "  "})

    def texts(result: object) -> list[str]:
        content = getattr(result, "structured_content", None)
        assert content is not None
        return [note["text"] for note in content["result"]]

    assert texts(by_text) == ["Call the DENTIST"]
    assert texts(by_tag) == ["water plants"]
    assert texts(wildcard) == ["100% done_ok"]
    assert texts(underscore) == ["100% done_ok"]
    assert empty.is_error


async def test_delete_removes_once_and_is_idempotent(tmp_path: Path) -> None:
    async with Client(build_server(db_path=tmp_path / "notes.db")) as client:
        added = await client.call_tool("add", {"text": "temporary"})
        assert added.structured_content is not None
        note_id = added.structured_content["id"]
        first = await client.call_tool("delete", {"note_id": note_id})
        second = await client.call_tool("delete", {"note_id": note_id})
        listed = await client.call_tool("list", {})
    assert first.structured_content == {"deleted": True}
    assert second.structured_content == {"deleted": False}
    assert listed.structured_content == {"result": []}


@pytest.mark.parametrize(
    "arguments",
    [
        {"text": ""},
        {"text": "x" * 10_001},
        {"text": "ok", "tags": ["t" * 65]},
        {"text": "ok", "tags": list("abcdefghijklmnopqrstu")},
    ],
)
async def test_add_rejects_invalid_input(tmp_path: Path, arguments: dict[str, object]) -> None:
    async with Client(build_server(db_path=tmp_path / "notes.db")) as client:
        result = await client.call_tool("add", arguments)
        listed = await client.call_tool("list", {})
    assert result.is_error
    assert listed.structured_content == {"result": []}


def test_default_db_path_prefers_env_then_xdg_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMG_NOTES_DB", str(tmp_path / "explicit.db"))
    assert default_db_path() == tmp_path / "explicit.db"
    monkeypatch.delenv("SMG_NOTES_DB")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_db_path() == tmp_path / "state" / "smg" / "notes.db"


async def test_annotations_describe_each_tool_honestly(tmp_path: Path) -> None:
    async with Client(build_server(db_path=tmp_path / "notes.db")) as client:
        tools = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}
    hints = {
        name: (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        for name, a in tools.items()
        if a is not None
    }
    assert hints == {
        "add": (False, False, False, False),
        "list": (True, False, True, False),
        "search": (True, False, True, False),
        "delete": (False, True, True, False),
    }
