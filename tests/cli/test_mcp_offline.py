"""``smg mcp`` offline, as a user runs it: real ``smg`` processes, a registry file, real MCP servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_servers._run import READY_PREFIX
from mcp_servers.faults import LONG_TOOL_NAME
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.registry.store import SqliteRegistry
from smg.testing.processes import running

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
LITERAL = "sk-literal"
STDIO = ("--", sys.executable, "-m", "mcp_servers.calc", "--transport", "stdio")


@pytest.fixture(scope="module")
def faults_url() -> Iterator[str]:
    """One `faults` server on a free 127.0.0.1 port for the whole module."""
    args = [
        sys.executable,
        "-m",
        "mcp_servers.faults",
        "--transport",
        "streamable-http",
        "--host",
        "127.0.0.1",
    ]
    with running([*args, "--port", "0"], READY_PREFIX, timeout=30) as (_, url):
        yield url


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "state" / "mcp.db"


def smg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m smg mcp ARGS`` with a clean target environment and the test secret set."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SMG_")}
    base["SMG_TEST_SECRET"] = "from-the-environment"
    return subprocess.run(
        [sys.executable, "-m", "smg", "mcp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**base, **(env or {})},
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def add_faults(registry: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    secrets = ("--header", f"Authorization=Bearer {LITERAL}", "--header", "X-Api-Key=${SMG_TEST_SECRET}")
    return smg("add", "faults", "--url", url, *secrets, "--registry", str(registry), *extra)


def test_added_servers_are_listed_and_shown_without_literal_secrets(registry: Path, faults_url: str) -> None:
    ok(add_faults(registry, faults_url))
    ok(smg("add", "calc", "--registry", str(registry), "--env", "API_TOKEN=tok-literal", *STDIO))

    listed = json.loads(ok(smg("list", "--json", "--registry", str(registry))).stdout)["servers"]
    assert [(s["name"], s["transport"]) for s in listed] == [("calc", "stdio"), ("faults", "streamable-http")]
    shown = json.loads(ok(smg("show", "faults", "--json", "--registry", str(registry))).stdout)
    assert shown["headers"] == {"Authorization": "***", "X-Api-Key": "${SMG_TEST_SECRET}"}
    assert shown["url"] == faults_url

    outputs = [
        smg("list", "--registry", str(registry)),
        smg("show", "faults", "--registry", str(registry)),
        smg("show", "calc", "--json", "--registry", str(registry)),
        add_faults(registry, faults_url),  # refused: name taken; its report and error are output too
    ]
    for result in outputs:
        assert LITERAL not in result.stdout + result.stderr
        assert "tok-literal" not in result.stdout + result.stderr
    # The registry keeps the literal (the gateway needs it); only what is printed is redacted.
    assert SqliteRegistry(registry).get("faults").headers["Authorization"] == f"Bearer {LITERAL}"


def test_dry_run_reports_every_finding_and_saves_nothing(registry: Path, faults_url: str) -> None:
    result = ok(add_faults(registry, faults_url, "--dry-run", "--json"))
    report = json.loads(result.stdout)
    assert report["saved"] is False
    kinds = {f["kind"] for f in report["findings"]}
    assert {"reachable", "tool", "shortened"} <= kinds
    assert not any(f["blocking"] for f in report["findings"])
    assert SqliteRegistry(registry).list() == []


def test_taken_name_is_refused_with_its_findings_and_exit_1(registry: Path, faults_url: str) -> None:
    ok(add_faults(registry, faults_url))
    result = add_faults(registry, faults_url, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [f["kind"] for f in report["findings"] if f["blocking"]] == ["server_exists"]
    assert result.stderr.startswith("smg: error: MCP server 'faults' was not registered")
    assert result.stderr.count("\n") == 1


def test_unreachable_server_is_refused_and_not_saved(registry: Path) -> None:
    result = smg(
        "add", "down", "--url", "http://127.0.0.1:1/mcp", "--timeout", "5", "--registry", str(registry)
    )
    assert result.returncode == 1
    assert "unreachable" in result.stdout
    assert result.stderr.startswith("smg: error: ") and result.stderr.count("\n") == 1
    assert SqliteRegistry(registry).list() == []


def test_seventy_character_tool_is_reported_shortened_and_callable_by_either_name(
    registry: Path, faults_url: str
) -> None:
    exposed = exposed_tool_name("faults", LONG_TOOL_NAME)
    report = json.loads(ok(add_faults(registry, faults_url, "--json")).stdout)
    [shortened] = [f for f in report["findings"] if f["kind"] == "shortened"]
    assert (shortened["tool"], shortened["exposed"]) == (LONG_TOOL_NAME, exposed)

    for name in (exposed, LONG_TOOL_NAME):
        result = ok(
            smg("call", "faults", name, "--args", '{"text": "x"}', "--json", "--registry", str(registry))
        )
        outcome = json.loads(result.stdout)
        assert (outcome["tool"], outcome["status"], outcome["text"]) == (LONG_TOOL_NAME, "ok", "x")


def test_failed_tool_call_prints_the_outcome_and_exits_1(registry: Path, faults_url: str) -> None:
    ok(add_faults(registry, faults_url))
    result = smg("call", "faults", "flaky", "--args", '{"p": 1.0}', "--json", "--registry", str(registry))
    assert result.returncode == 1
    assert json.loads(result.stdout)["status"] == "error"
    assert result.stderr.startswith("smg: error: tool 'flaky' of MCP server 'faults' failed")


def test_tools_and_check_connect_to_every_server_and_name_the_one_that_is_down(
    registry: Path, faults_url: str
) -> None:
    ok(add_faults(registry, faults_url))
    ok(smg("add", "calc", "--registry", str(registry), *STDIO))
    # Registered behind validation's back, as a server that later went away would be.
    SqliteRegistry(registry).add(
        ServerSpec(name="down", transport="streamable-http", url="http://127.0.0.1:1/mcp")
    )

    tools = smg("tools", "--json", "--timeout", "5", "--registry", str(registry))
    assert tools.returncode == 0, tools.stderr
    listed = {(t["server"], t["name"], t["exposed_name"]) for t in json.loads(tools.stdout)["tools"]}
    assert ("calc", "evaluate", "calc__evaluate") in listed
    assert ("faults", "echo", "faults__echo") in listed
    assert "smg: warning: MCP server 'down' skipped" in tools.stderr

    one = json.loads(ok(smg("tools", "calc", "--refresh", "--json", "--registry", str(registry))).stdout)
    assert [t["name"] for t in one["tools"]] == ["evaluate"]

    check = smg("check", "--json", "--timeout", "5", "--registry", str(registry))
    assert check.returncode == 1
    rows = {row["name"]: row for row in json.loads(check.stdout)["servers"]}
    assert rows["calc"]["ok"] and rows["faults"]["ok"] and rows["calc"]["tools"] == 1
    assert not rows["down"]["ok"] and rows["down"]["state"] == "failed" and rows["down"]["error"]
    assert check.stderr == "smg: error: 1 of 3 MCP server(s) failed the check: down\n"


def test_remove_unregisters_and_a_second_remove_is_an_error(registry: Path) -> None:
    SqliteRegistry(registry).add(ServerSpec(name="calc", transport="stdio", command=sys.executable))
    assert ok(smg("remove", "calc", "--registry", str(registry))).stdout == "removed MCP server calc\n"
    again = smg("remove", "calc", "--registry", str(registry))
    assert again.returncode == 1
    assert again.stderr == "smg: error: no MCP server named 'calc' is registered\n"


def test_without_target_flags_the_default_registry_is_used(tmp_path: Path) -> None:
    SqliteRegistry(tmp_path / "smg" / "mcp.db").add(
        ServerSpec(name="calc", transport="stdio", command=sys.executable)
    )
    listed = ok(smg("list", "--json", env={"XDG_STATE_HOME": str(tmp_path)}))
    assert [s["name"] for s in json.loads(listed.stdout)["servers"]] == ["calc"]


def test_a_reader_that_leaves_early_gets_no_traceback(registry: Path) -> None:
    """`smg mcp list --json | head -c0`: stdout's reader is gone before anything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smg", "mcp", "list", "--json", "--registry", str(registry)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
