"""docs/configuration.md documents every gateway setting exactly as the settings model defines it (flag,
variable, file key, default, help), and its examples are what the real loader and commands do."""

from __future__ import annotations

import itertools
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from smg.cli.config import check_mcp_files
from smg.cli.main import build_parser, main
from smg.errors import ConfigError
from smg.mcp.registry.yaml_config import static_servers
from smg.settings import flag_table, parse_settings, settings_from_namespace
from smg.settings.groups import MCP_SERVERS_KEY
from smg.settings.table import sections, settings_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _flags_section() -> str:
    return _section("Gateway flags")


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
        _, doc_env, _, doc_default, meaning = rows[flag]
        assert doc_env == f"`{env}`", flag
        assert doc_default == _rendered_default(default), flag
        assert meaning.lower().startswith(help_text.lower()), flag


def test_flag_rows_name_the_config_file_key() -> None:
    rows = {row[0].strip("`"): row for row in _rows()}
    for s in settings_table():
        assert rows[s.option][2] == f"`{s.key}`", s.option


def test_every_file_key_and_list_section_appears_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    keys = [s.key for s in settings_table()] + [s.key for s in sections()]
    assert [key for key in keys if f"`{key}`" not in text] == []


# --- the examples of the config file section, run through the real loader and commands ----------------

_ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def _blocks(section: str, language: str) -> list[list[str]]:
    """The lines of every ```language block of ``section``, unindented (blocks may sit in a list item)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    indent = 0
    for line in section.splitlines():
        stripped = line.strip()
        if current is None and stripped == f"```{language}":
            current, indent = [], len(line) - len(line.lstrip())
        elif current is not None and stripped == "```":
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


def _example_config() -> list[str]:
    (example,) = _blocks(_section("Config file"), "yaml")
    return example


def _write_example(directory: Path, lines: list[str]) -> Path:
    path = directory / "smg.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _command(line: str) -> tuple[dict[str, str], list[str]]:
    """``$ VAR=x smg ARGS  # comment`` -> ({VAR: x}, ARGS)."""
    words = shlex.split(line.removeprefix("$ "), comments=True)
    env = {}
    while words and _ENV_WORD.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "smg", line
    return env, words[1:]


def _error_of(argv: list[str], env: dict[str, str]) -> str | None:
    """The message ``smg launch ARGV`` stops with before starting anything, None when it would start."""
    try:
        ns = build_parser().parse_args(["launch", *argv])
        check_mcp_files(settings_from_namespace(ns, env))
    except ConfigError as exc:
        return exc.message
    return None


def _examples(lines: list[str]) -> list[tuple[str, str]]:
    """(command line, the error line after it) of a text block of ``$ smg ...`` / ``smg: error:`` pairs."""
    return [
        (command, error.removeprefix("smg: error: "))
        for command, error in itertools.pairwise(lines)
        if command.startswith("$ ") and error.startswith("smg: error: ")
    ]


def test_the_example_config_file_is_read_by_the_real_loader(tmp_path: Path) -> None:
    path = _write_example(tmp_path, _example_config())

    s = parse_settings(["--config", str(path)], env={})

    assert [(w.url, w.api_key) for w in s.workers.static] == [
        ("http://10.0.0.11:8000", "sk-upstream-shared"),
        ("http://10.0.0.12:8000", "sk-upstream-shared"),
        ("http://10.0.0.13:8000", "sk-upstream-shared"),
        ("http://10.0.0.14:8000", "sk-upstream-gpu4"),
    ]
    assert s.workers.policy == "round_robin"
    assert s.auth.api_keys and s.auth.admin_api_keys
    assert (s.admission.max_concurrent_requests, s.admission.queue_size) == (256, 64)
    assert s.retry.max_retries == 3
    servers = static_servers(s.mcp.config_path, s.mcp.servers_file, key=MCP_SERVERS_KEY)
    assert [spec.name for spec in servers] == ["clock", "search"]


def test_the_config_file_error_examples_are_what_smg_prints(tmp_path: Path) -> None:
    (block,) = _blocks(_section("Config file"), "text")
    examples = _examples(block)
    assert len(examples) >= 4
    for command, expected in examples:
        match = re.search(r"# line (\d+) reads `(.+)`$", command)
        assert match, command
        lines = list(_example_config())
        number, text = int(match.group(1)), match.group(2)
        old = lines[number - 1]
        lines[number - 1] = old[: len(old) - len(old.lstrip())] + text
        path = _write_example(tmp_path, lines)
        env, argv = _command(command)
        argv = [str(path) if word == "smg.yaml" else word for word in argv]

        message = _error_of(argv, env)

        assert message == expected.replace("smg.yaml", str(path)), command


def test_the_validation_examples_are_what_smg_prints() -> None:
    examples = [
        (command, expected)
        for block in _blocks(_section("Validation"), "text")
        for command, expected in _examples(block)
        if ".yaml" not in command  # the one about an MCP file whose text the doc does not show
    ]
    assert len(examples) >= 6
    for command, expected in examples:
        env, argv = _command(command)
        assert _error_of(argv, env) == expected, command


def test_the_config_show_example_is_what_smg_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = _blocks(_section("`smg config show`"), "text")
    command, *shown = block
    _write_example(tmp_path, _example_config())
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("SMG_")] + ["FORCE_COLOR", "TTY_COMPATIBLE"]:
        monkeypatch.delenv(name, raising=False)
    env, argv = _command(command)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert main(argv) == 0

    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    for line in shown:
        if line != "...":
            assert line.rstrip() in printed, line
