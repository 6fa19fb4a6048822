"""``smg mcp --gateway URL --admin-key KEY`` as a user runs it, against a real gateway process and a real
faults MCP server over streamable HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_servers.faults import LONG_TOOL_NAME
from tests._procs import Procs, poll

pytestmark = pytest.mark.e2e

ADMIN_KEY = "adm"


@pytest.fixture
def faults_url() -> Iterator[str]:
    faults = Procs()
    try:
        yield faults.mcp_faults()[1]
    finally:
        faults.stop_all()


@pytest.fixture
def gateway(procs: Procs, tmp_path: Path) -> str:
    _, url = procs.gateway("--admin-api-key", ADMIN_KEY, "--mcp-registry", str(tmp_path / "r.db"))
    return url


def _mcp(gateway: str, *args: str, key: str = ADMIN_KEY) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "smg", "mcp", "--gateway", gateway, "--admin-key", key, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _json(gateway: str, *args: str) -> Any:
    done = _mcp(gateway, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_mcp_cli_drives_a_running_gateway_from_add_to_remove(gateway: str, faults_url: str) -> None:
    dry = _mcp(gateway, "add", "faults", "--url", faults_url, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["saved"] is False
    assert _json(gateway, "list") == {"servers": []}

    added = _mcp(gateway, "add", "faults", "--url", faults_url, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["saved"] is True

    def connected() -> dict[str, Any] | None:
        servers = _json(gateway, "list")["servers"]
        up = servers and (servers[0]["status"] or {}).get("state") == "connected"
        return servers[0] if up else None

    listed = poll(connected, timeout=60)
    assert (listed["name"], listed["url"]) == ("faults", faults_url)
    assert listed["status"]["tools"] >= 10

    shown = _json(gateway, "show", "faults")
    assert {"echo", LONG_TOOL_NAME} <= {t["name"] for t in shown["tools"]}
    tools = _json(gateway, "tools")["tools"]
    assert ("faults", LONG_TOOL_NAME) in {(t["server"], t["name"]) for t in tools}

    called = _mcp(gateway, "call", "faults", LONG_TOOL_NAME, "--args", '{"text": "seventy-echo"}')
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip() == "seventy-echo"

    checked = _mcp(gateway, "check")
    assert checked.returncode == 0, checked.stderr

    removed = _mcp(gateway, "remove", "faults")
    assert removed.returncode == 0, removed.stderr
    assert _json(gateway, "list") == {"servers": []}


def test_a_wrong_admin_key_is_one_error_line_and_exit_1(gateway: str) -> None:
    done = _mcp(gateway, "list", key="not-the-admin-key")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smg: error: ")
    assert "401" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_stdio_server_that_cannot_start_is_refused_naming_its_cause(gateway: str) -> None:
    cause = "cannot run '/nonexistent/server': No such file or directory"
    refused = _mcp(gateway, "add", "nocmd", "--", "/nonexistent/server")
    assert refused.returncode == 1
    assert cause in refused.stderr.splitlines()[-1]

    resp = httpx.post(
        f"{gateway}/mcp/servers",
        json={"name": "nocmd", "transport": "stdio", "command": "/nonexistent/server"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "mcp_registration_refused"
    assert cause in error["message"]
    assert _json(gateway, "list") == {"servers": []}
