"""`POST /mcp/servers` validates a stdio server on the session that then serves it: the server's process
is started once. A refused server (its tools collide, or it dies at start) gets the same error as
ever, and leaves no process, no registry entry and no metric series behind."""

from __future__ import annotations

import sys
import textwrap
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.observability.metrics import Metrics
from smg.testing.gateway import RunningGateway
from smg.testing.processes import pid_alive
from smg.testing.worker import RunningWorker
from tests._helpers import assert_error, sample
from tests.conftest import make_settings
from tests.mcp.runtime._support import eventually

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
# An MCP server over stdio that appends its PID to a file each time it starts, then offers an echo tool
# under each name given; with the name "die" it writes a line on stderr and exits instead.
SERVER = textwrap.dedent(
    f"""
    import os, sys
    sys.path.insert(0, {str(REPO_ROOT)!r})
    with open(sys.argv[1], "a") as starts:
        starts.write(f"{{os.getpid()}}\\n")
    if sys.argv[2:] == ["die"]:
        sys.exit("the server refuses to start")
    from mcp.server import MCPServer
    server = MCPServer("recorder")
    for name in sys.argv[2:]:
        server.add_tool(lambda text: text, name=name, description="echo")
    server.run(transport="stdio")
    """
)


def _spec(tmp_path: Path, name: str, *tools: str) -> dict[str, Any]:
    script = tmp_path / "recorder.py"
    script.write_text(SERVER)
    starts = tmp_path / f"{name}.pids"
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(script), str(starts), *tools],
    }


def _starts(tmp_path: Path, name: str) -> list[int]:
    path = tmp_path / f"{name}.pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


async def _servers(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    resp = await http.get("/mcp/servers")
    assert resp.status_code == 200, resp.text
    return {server["name"]: server for server in resp.json()["servers"]}


@pytest.fixture
async def http(worker: RunningWorker, start_gateway: Any, stack: AsyncExitStack) -> httpx.AsyncClient:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    return await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=60))


async def test_a_registered_stdio_server_is_started_once_and_that_process_serves(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    added = await http.post("/mcp/servers", json=_spec(tmp_path, "once", "echo"))
    assert added.status_code == 201, added.text
    status = (await _servers(http))["once"]["status"]
    called = await http.post("/mcp/servers/once/tools/echo/call", json={"arguments": {"text": "hi"}})
    [pid] = _starts(tmp_path, "once")
    assert (status["state"], status["pid"]) == ("connected", pid)
    assert (called.json()["status"], called.json()["text"]) == ("ok", "hi")
    assert pid_alive(pid)


async def test_a_dry_run_starts_the_server_once_and_stops_it(http: httpx.AsyncClient, tmp_path: Path) -> None:
    dry = await http.post("/mcp/servers", json={**_spec(tmp_path, "trial", "echo"), "dry_run": True})
    assert (dry.status_code, dry.json()["saved"]) == (200, False)
    [pid] = _starts(tmp_path, "trial")
    await eventually(lambda: not pid_alive(pid))
    assert "trial" not in await _servers(http)


async def test_a_server_whose_tools_collide_is_refused_and_leaves_nothing_behind(
    http: httpx.AsyncClient, tmp_path: Path, metrics: Metrics
) -> None:
    first = await http.post("/mcp/servers", json=_spec(tmp_path, "a__b", "c"))
    assert first.status_code == 201, first.text
    before = sample(metrics, "smg_mcp_server_connected", server="a__b")
    refused = await http.post("/mcp/servers", json=_spec(tmp_path, "a", "b__c"))
    error = assert_error(refused, 409, "mcp_registration_conflict")
    assert error["message"] == (
        "MCP server 'a' was not registered: tool 'c' of MCP server 'a__b' and tool 'b__c' of MCP server "
        "'a' would both be offered as 'a__b__c'"
    )
    [pid] = _starts(tmp_path, "a")
    await eventually(lambda: not pid_alive(pid))
    assert set(await _servers(http)) == {"a__b"}
    assert _starts(tmp_path, "a__b") == [(await _servers(http))["a__b"]["status"]["pid"]]
    assert sample(metrics, "smg_mcp_server_connected", server="a") is None
    assert sample(metrics, "smg_mcp_server_connected", server="a__b") == before == 1


async def test_a_server_that_dies_at_start_is_refused_with_its_stderr_and_is_not_started_again(
    http: httpx.AsyncClient, tmp_path: Path, metrics: Metrics
) -> None:
    refused = await http.post("/mcp/servers", json=_spec(tmp_path, "dies", "die"))
    error = assert_error(refused, 400, "mcp_registration_refused")
    reason = "MCP server 'dies' is unreachable: MCPError: Connection closed"
    assert error["message"] == (
        f"MCP server 'dies' was not registered: {reason}; last stderr lines: the server refuses to start"
    )
    [pid] = _starts(tmp_path, "dies")
    assert not pid_alive(pid)
    assert "dies" not in await _servers(http)
    assert sample(metrics, "smg_mcp_server_connected", server="dies") is None
