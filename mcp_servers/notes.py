"""`notes`: a small SQLite-backed note store.

Tools (closed-world; annotations in brackets):

- `add(text, tags=[])` -> the stored `Note` [not read-only, not idempotent: each call adds a note].
- `list(limit=20)` -> newest notes first [read-only, idempotent].
- `search(query, limit=20)` -> notes whose text or a tag contains `query`, case-insensitively,
  newest first [read-only, idempotent].
- `delete(note_id)` -> `{"deleted": bool}`; deleting a missing note returns `false`
  [destructive, idempotent].

A `Note` is `{"id": int, "text": str, "tags": [str], "created_at": ISO-8601 UTC}`. Invalid
arguments (empty text, oversized text or tags, limit out of range) raise `ToolError`.

Each call opens its own connection (sync tools run on worker threads), so the file may be shared
by several server processes. The database is `--db PATH`, else `$SMG_NOTES_DB`, else
`$XDG_STATE_HOME/smg/notes.db` (default `~/.local/state/smg/notes.db`); parent directories are created.

Run: `python -m mcp_servers.notes --transport stdio|streamable-http|sse [--db PATH] [--port N]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts on Python < 3.12

from mcp_servers._run import run_cli

__all__ = ["Note", "build_server", "default_db_path", "main"]

MAX_TEXT_CHARS = 10_000
MAX_TAGS = 20
MAX_TAG_CHARS = 64
MAX_LIMIT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""
_COLUMNS = "id, text, tags, created_at"


class Note(TypedDict):
    """One stored note."""

    id: int
    text: str
    tags: list[str]
    created_at: str


class DeleteResult(TypedDict):
    """Outcome of `delete`: whether a note with that id existed."""

    deleted: bool


def default_db_path() -> Path:
    """`$SMG_NOTES_DB`, else `$XDG_STATE_HOME/smg/notes.db`, else `~/.local/state/smg/notes.db`."""
    if explicit := os.environ.get("SMG_NOTES_DB"):
        return Path(explicit)
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "smg" / "notes.db"


def build_server(*, db_path: str | os.PathLike[str]) -> MCPServer[Any]:
    """Build the notes server over the SQLite file `db_path`, creating it and its parents if needed.

    Raises:
        OSError: if the parent directory cannot be created.
        sqlite3.Error: if the file is not a usable SQLite database.
    """
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _connect(path) as db:
        db.execute(_SCHEMA)

    server: MCPServer[Any] = MCPServer("notes", instructions="Store, list, search and delete short notes.")
    read_only = ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        )
    )
    def add(text: str, tags: Sequence[str] = ()) -> Note:
        """Store a note with optional tags and return it with its id."""
        clean_text, clean_tags = _validated_text(text), _validated_tags(tags)
        created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with _connect(path) as db:
            cursor = db.execute(
                "INSERT INTO notes (text, tags, created_at) VALUES (?, ?, ?)",
                (clean_text, json.dumps(clean_tags), created_at),
            )
            note_id = cursor.lastrowid
        assert note_id is not None  # always set after a successful INSERT
        return Note(id=note_id, text=clean_text, tags=clean_tags, created_at=created_at)

    @server.tool(name="list", annotations=read_only)
    def list_notes(limit: int = 20) -> list[Note]:
        """Return up to `limit` (1-100) notes, newest first."""
        with _connect(path) as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM notes ORDER BY id DESC LIMIT ?", (_validated_limit(limit),)
            ).fetchall()
        return [_note(row) for row in rows]

    @server.tool(annotations=read_only)
    def search(query: str, limit: int = 20) -> list[Note]:
        """Return up to `limit` notes whose text or a tag contains `query` (any case), newest first."""
        if not query.strip():
            raise ToolError("query must not be empty")
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with _connect(path) as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM notes WHERE text LIKE ?1 ESCAPE '\\' "
                "OR EXISTS (SELECT 1 FROM json_each(notes.tags) WHERE value LIKE ?1 ESCAPE '\\') "
                "ORDER BY id DESC LIMIT ?2",
                (pattern, _validated_limit(limit)),
            ).fetchall()
        return [_note(row) for row in rows]

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    def delete(note_id: int) -> DeleteResult:
        """Delete the note `note_id`; `deleted` is false if no such note existed."""
        with _connect(path) as db:
            cursor = db.execute("DELETE FROM notes WHERE id = ?", (note_id,))
        return DeleteResult(deleted=cursor.rowcount > 0)

    return server


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """One short-lived connection, committed on success and always closed."""
    with closing(sqlite3.connect(path, timeout=5.0)) as db, db:
        yield db


def _note(row: tuple[Any, ...]) -> Note:
    note_id, text, tags, created_at = row
    return Note(id=note_id, text=text, tags=json.loads(tags), created_at=created_at)


def _validated_text(text: str) -> str:
    stripped = text.strip()
    if not stripped:
        raise ToolError("text must not be empty")
    if len(stripped) > MAX_TEXT_CHARS:
        raise ToolError(f"text is {len(stripped)} characters; the limit is {MAX_TEXT_CHARS}")
    return stripped


def _validated_tags(tags: Sequence[str]) -> list[str]:
    clean = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(clean) > MAX_TAGS:
        raise ToolError(f"{len(clean)} tags given; the limit is {MAX_TAGS}")
    if too_long := [tag for tag in clean if len(tag) > MAX_TAG_CHARS]:
        raise ToolError(f"tag {too_long[0][:20]!r}... is longer than {MAX_TAG_CHARS} characters")
    return clean


def _validated_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ToolError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, help="SQLite file (default: $SMG_NOTES_DB or state dir)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see `mcp_servers._run` for the contract."""
    run_cli(
        lambda args: build_server(db_path=args.db or default_db_path()),
        name="notes",
        argv=argv,
        add_arguments=_add_arguments,
    )


if __name__ == "__main__":
    main()
