"""What a person sees from ``smg mcp``: whole names in a pipe, a table and a spinner on a terminal, and
failures that name their cause (the real command, stdout/stderr pipes or a pseudo-terminal)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mcp_servers.faults import BUILTIN_TOOLS, LONG_TOOL_NAME
from smg.mcp.registry.naming import exposed_tool_name
from tests.cli._run import smg, smg_on_terminal

pytestmark = pytest.mark.e2e

FAULTS = ("--", sys.executable, "-m", "mcp_servers.faults", "--transport", "stdio")
# Starts, never answers the MCP handshake; stopped by the CLI when the registration gives up.
SILENT = ("--", sys.executable, "-c", "import time; time.sleep(600)")


@pytest.fixture
def registry(tmp_path: Path) -> str:
    return str(tmp_path / "mcp.db")


def _add_faults(registry: str) -> None:
    added = smg("mcp", "add", "faults", "--registry", registry, *FAULTS)
    assert added.returncode == 0, added.stderr


def test_piped_tool_listing_has_one_line_per_tool_with_every_name_whole(registry: str) -> None:
    _add_faults(registry)
    listed = smg("mcp", "tools", "--registry", registry)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:2] == ["server", "tool"]
    assert len(rows) == len(BUILTIN_TOOLS)
    assert all(row.startswith("faults ") for row in rows)
    long_rows = [row for row in rows if LONG_TOOL_NAME in row.split()]
    assert len(long_rows) == 1
    assert exposed_tool_name("faults", LONG_TOOL_NAME) in long_rows[0].split()


def test_piped_server_listing_keeps_a_long_command_on_its_row(registry: str) -> None:
    _add_faults(registry)
    listed = smg("mcp", "list", "--registry", registry)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert " ".join(FAULTS[1:]) in lines[1]


def test_on_a_terminal_the_listing_is_a_table(registry: str) -> None:
    _add_faults(registry)
    code, terminal, _ = smg_on_terminal("mcp", "list", "--registry", registry, terminal="stdout")
    assert code == 0
    assert "┏" in terminal and "faults" in terminal


def test_a_registration_that_times_out_names_the_timeout_and_its_length(registry: str) -> None:
    refused = smg("mcp", "add", "silent", "--registry", registry, "--timeout", "2", *SILENT)
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr  # piped: the error line and nothing else (no spinner)
    assert "timed out" in lines[0] and "initialize within 2 s" in lines[0]
    assert "not connected" not in lines[0]


def test_a_slow_operation_shows_a_spinner_on_a_terminal(registry: str) -> None:
    code, terminal, out = smg_on_terminal(
        "mcp", "add", "silent", "--registry", registry, "--timeout", "2", *SILENT, terminal="stderr"
    )
    assert code == 1
    assert "validating MCP server 'silent'" in terminal
    assert "smg: error: " in terminal and "initialize within 2 s" in terminal
    assert "validating" not in out  # stdout (the findings) carries no progress


def test_an_unrunnable_command_is_refused_with_its_cause(registry: str) -> None:
    refused = smg("mcp", "add", "nocmd", "--registry", registry, "--", "/nonexistent/server")
    assert refused.returncode == 1
    assert "cannot run '/nonexistent/server': No such file or directory" in refused.stderr


def test_a_server_that_dies_at_start_shows_its_last_stderr_lines(registry: str) -> None:
    crash = "import sys; print('loading', file=sys.stderr); raise RuntimeError('no config at /etc/x')"
    refused = smg("mcp", "add", "crashy", "--registry", registry, "--", sys.executable, "-c", crash)
    assert refused.returncode == 1
    error = refused.stderr.splitlines()[-1]
    assert "Traceback (most recent call last):" in error
    assert "RuntimeError: no config at /etc/x" in error
