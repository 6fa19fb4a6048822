"""docs/configuration.md documents every gateway flag exactly as `smg.settings.flag_table()` defines it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from smg.settings import flag_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def _flags_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Gateway flags\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _rows() -> list[list[str]]:
    """Cells of every table row in the gateway flags section that documents a flag."""
    rows = []
    for line in _flags_section().splitlines():
        if line.startswith("| `--"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _rendered_default(default: Any) -> str:
    if default is None or default == ():
        return "unset"
    if default is False:
        return "off"
    if isinstance(default, float):
        return f"`{default:g}`"
    return f"`{default}`"


def test_every_gateway_flag_and_env_var_appears_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for flag, env, _, _ in flag_table() for name in (flag, env) if f"`{name}`" not in text]
    assert missing == []


def test_flag_table_has_one_row_per_gateway_flag() -> None:
    documented = [row[0].strip("`") for row in _rows()]
    assert sorted(documented) == sorted(flag for flag, _, _, _ in flag_table())
    assert len(documented) == len(set(documented))


def test_every_flag_mentioned_in_the_flag_table_exists() -> None:
    known = {flag for flag, _, _, _ in flag_table()}
    mentioned = set(_FLAG.findall(_flags_section()))
    assert mentioned - known == set()


def test_flag_rows_match_env_var_default_and_help() -> None:
    rows = {row[0].strip("`"): row for row in _rows()}
    for flag, env, help_text, default in flag_table():
        assert flag in rows, flag
        _, doc_env, doc_default, meaning = rows[flag]
        assert doc_env == f"`{env}`", flag
        assert doc_default == _rendered_default(default), flag
        assert meaning.lower().startswith(help_text.lower()), flag
