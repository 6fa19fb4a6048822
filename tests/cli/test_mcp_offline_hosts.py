"""Offline ``smg mcp add`` checks a URL against the MCP host allow-list the gateway would apply, when it
knows one (``--mcp-allowed-hosts``, ``SMG_MCP_ALLOWED_HOSTS``, or the config file of ``--config`` /
``SMG_CONFIG``), before contacting anything; it says which list it applied, or that it knows none."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_servers._run import READY_PREFIX
from smg.mcp.registry.store import SqliteRegistry
from smg.testing.processes import running
from tests.cli._run import clean_env, smg

pytestmark = pytest.mark.e2e

ELSEWHERE = "http://mcp.elsewhere.example:8080/mcp"  # never contacted: refused before any connection


@pytest.fixture(scope="module")
def faults_url() -> Iterator[str]:
    args = [sys.executable, "-m", "mcp_servers.faults", "--transport", "streamable-http"]
    with running([*args, "--host", "127.0.0.1", "--port", "0"], READY_PREFIX, timeout=30) as (_, url):
        yield url


def _add(registry: Path, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    target = ("--registry", str(registry), "--timeout", "10")
    return smg("mcp", "add", name, *target, *args, env=clean_env(**env))


def _findings(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    return {f["kind"]: f for f in json.loads(result.stdout)["findings"]}


@pytest.mark.parametrize(
    ("where", "args", "env"),
    [
        ("flag --mcp-allowed-hosts", ("--mcp-allowed-hosts", "127.0.0.1", "localhost"), {}),
        ("env SMG_MCP_ALLOWED_HOSTS", (), {"SMG_MCP_ALLOWED_HOSTS": "127.0.0.1,localhost"}),
    ],
    ids=["flag", "variable"],
)
def test_a_url_outside_the_allow_list_is_refused_before_anything_is_contacted(
    tmp_path: Path, where: str, args: tuple[str, ...], env: dict[str, str]
) -> None:
    registry = tmp_path / "mcp.db"
    result = _add(registry, "far", "--url", ELSEWHERE, *args, "--json", **env)
    assert result.returncode == 1, result.stderr
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["kind"], finding["blocking"]) == ("host_not_allowed", True)
    listed = f"127.0.0.1, localhost; from {where}"
    assert finding["message"] == (f"host 'mcp.elsewhere.example' is not in the allowed MCP hosts ({listed})")
    assert result.stderr == (
        "smg: error: MCP server 'far' was not registered: "
        f"host 'mcp.elsewhere.example' is not in the allowed MCP hosts ({listed})\n"
    )
    assert SqliteRegistry(registry).list() == []


def test_the_config_file_supplies_the_list_and_a_flag_wins_over_it(tmp_path: Path, faults_url: str) -> None:
    registry, config = tmp_path / "mcp.db", tmp_path / "smg.yaml"
    config.write_text("mcp_allowed_hosts: [mcp.elsewhere.example]\n")
    refused = _add(registry, "local", "--url", faults_url, "--config", str(config))
    assert refused.returncode == 1
    assert f"from file {config})" in refused.stderr
    assert SqliteRegistry(registry).list() == []

    from_env = _add(registry, "local", "--url", faults_url, "--json", SMG_CONFIG=str(config))
    assert from_env.returncode == 1 and "host_not_allowed" in _findings(from_env)

    flagged = _add(
        registry, "local", "--url", faults_url, "--config", str(config), "--mcp-allowed-hosts", "*"
    )
    assert flagged.returncode == 0, flagged.stderr
    assert "host_allowed" in flagged.stdout and "from flag --mcp-allowed-hosts" in flagged.stdout
    assert [spec.name for spec in SqliteRegistry(registry).list()] == ["local"]


def test_an_allowed_url_is_saved_and_the_output_names_the_list_applied(
    tmp_path: Path, faults_url: str
) -> None:
    registry = tmp_path / "mcp.db"
    result = _add(registry, "local", "--url", faults_url, "--json", SMG_MCP_ALLOWED_HOSTS="127.0.0.0/8")
    assert result.returncode == 0, result.stderr
    host = _findings(result)["host_allowed"]
    assert host == {
        "kind": "host_allowed",
        "message": "host '127.0.0.1' is in the allowed MCP hosts "
        "(127.0.0.0/8; from env SMG_MCP_ALLOWED_HOSTS)",
        "tool": None,
        "exposed": None,
        "blocking": False,
    }
    assert [spec.name for spec in SqliteRegistry(registry).list()] == ["local"]


def test_without_a_known_list_the_output_says_the_gateway_will_check(tmp_path: Path, faults_url: str) -> None:
    registry = tmp_path / "mcp.db"
    result = _add(registry, "local", "--url", faults_url)
    assert result.returncode == 0, result.stderr
    assert "host_unchecked" in result.stdout
    report = _add(tmp_path / "other.db", "local", "--url", faults_url, "--json")
    message = _findings(report)["host_unchecked"]["message"]
    assert message == (
        "no MCP host allow-list is known here (--mcp-allowed-hosts, SMG_MCP_ALLOWED_HOSTS or a --config "
        "file): a gateway checks host '127.0.0.1' against its own when it loads the registry"
    )


def test_a_stdio_server_names_no_host_and_gets_no_host_finding(tmp_path: Path) -> None:
    stdio = ("--", sys.executable, "-m", "mcp_servers.calc", "--transport", "stdio")
    result = _add(tmp_path / "mcp.db", "calc", "--json", *stdio, SMG_MCP_ALLOWED_HOSTS="127.0.0.1")
    assert result.returncode == 0, result.stderr
    assert not {"host_allowed", "host_unchecked", "host_not_allowed"} & set(_findings(result))


def test_a_malformed_pattern_is_a_usage_error_naming_its_source(tmp_path: Path) -> None:
    registry = tmp_path / "mcp.db"
    result = _add(registry, "far", "--url", ELSEWHERE, SMG_MCP_ALLOWED_HOSTS="10.0.0.0/99")
    assert result.returncode == 2
    assert result.stderr.startswith("smg: error: ") and "SMG_MCP_ALLOWED_HOSTS" in result.stderr
    assert SqliteRegistry(registry).list() == []


def test_the_allow_list_options_are_refused_with_a_gateway_target(tmp_path: Path) -> None:
    result = smg(
        "mcp", "add", "far", "--url", ELSEWHERE, "--gateway", "http://127.0.0.1:9",
        "--mcp-allowed-hosts", "127.0.0.1",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "smg: error: --mcp-allowed-hosts and --config apply to the registry file; "
        "a gateway checks URLs against its own --mcp-allowed-hosts\n"
    )
