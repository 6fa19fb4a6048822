"""MCP servers as real processes behind a real gateway process: stdio children never outlive it, and a
restarted HTTP server is used again without restarting the gateway."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from smg.testing.processes import pid_alive, spawn, stop, wait_for_line
from tests._procs import Procs, poll

pytestmark = pytest.mark.e2e


def _stdio_config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.yaml"
    server = {
        "name": "faults",
        "protocol": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.faults", "--transport", "stdio"],
    }
    path.write_text(yaml.safe_dump({"servers": [server]}))
    return path


def _child_pid(gw: str) -> int:
    def pid() -> int | None:
        servers = httpx.get(gw + "/mcp/servers", timeout=10).json()["servers"]
        value = servers[0]["status"]["pid"] if servers else None
        return value if isinstance(value, int) else None

    found: int = poll(pid, timeout=30)
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_stdio_child_outlives_the_gateway(procs: Procs, tmp_path: Path, sig: signal.Signals) -> None:
    _, worker = procs.worker()
    gateway, gw = procs.gateway(
        "--worker-urls", worker, "--mcp-config-path", str(_stdio_config(tmp_path)),
        "--mcp-registry", str(tmp_path / "registry.db"),
    )  # fmt: skip
    child = _child_pid(gw)
    assert pid_alive(child)
    os.kill(gateway.pid, sig)
    gateway.wait(30)
    poll(lambda: not pid_alive(child), timeout=15)


def _loop(gw: str, script: str) -> dict[str, object]:
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": script}],
        "tools": [{"type": "mcp", "server_label": "faults"}],
    }
    resp = httpx.post(gw + "/v1/chat/completions", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    result: dict[str, object] = resp.json()
    return result


def test_http_server_killed_mid_call_reports_failure_and_a_restart_is_used_again(
    procs: Procs, tmp_path: Path
) -> None:
    args = [sys.executable, "-m", "mcp_servers.faults", "--transport", "streamable-http"]
    server = spawn([*args, "--port", "0"])
    try:
        url = wait_for_line(server, "MCP_SERVER_READY")
        port = url.rsplit(":", 1)[1].split("/")[0]
        _, worker = procs.worker()
        _, gw = procs.gateway("--worker-urls", worker, "--mcp-registry", str(tmp_path / "registry.db"))
        added = httpx.post(
            gw + "/mcp/servers",
            json={"name": "faults", "transport": "streamable-http", "url": url},
            timeout=60,
        )
        assert added.status_code == 201, added.text

        # crash() kills the server while the call is in flight: a destructive call, never replayed.
        crashed = _loop(gw, "CALL faults__crash {}")
        calls = crashed["smg"]["tool_calls"]  # type: ignore[index]
        assert [c["status"] for c in calls] == ["unavailable"]  # type: ignore[index]
        server.wait(10)

        server = spawn([*args, "--port", port])
        wait_for_line(server, "MCP_SERVER_READY")
        after = _loop(gw, 'CALL faults__echo {"text": "back again"}')
        assert [c["status"] for c in after["smg"]["tool_calls"]] == ["ok"]  # type: ignore[index]
        assert "back again" in after["choices"][0]["message"]["content"]  # type: ignore[index]
    finally:
        stop(server)
