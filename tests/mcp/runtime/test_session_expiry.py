"""An HTTP MCP server that holds server-side sessions (2025-11-25 streamable HTTP, `mcp-session-id`)
ends or forgets the gateway's session: the gateway opens a new one and the tool call succeeds.
Real processes throughout: `session_mcp_server.py`, a scripted worker and a gateway."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from smg.testing.processes import spawn, wait_for_line
from tests._procs import CHAT, Gateway, Procs, SideTraffic, chat, poll

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

MCP = [{"type": "mcp", "server_label": "sessions", "require_approval": "never"}]


class _Server:
    def __init__(self, procs: Procs) -> None:
        cmd = [sys.executable, "-m", "tests.fixtures.session_mcp_server"]
        proc = spawn(cmd, stderr=subprocess.DEVNULL)
        procs.started.append(proc)
        self.url = wait_for_line(proc, "MCP_SERVER_READY")
        self._base = self.url.removesuffix("/mcp")

    def post(self, path: str) -> dict[str, Any]:
        resp = httpx.post(self._base + path, timeout=10)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(self._base + "/_stats", timeout=10).json()
        return result


def _stack(procs: Procs, tmp_path: Path) -> tuple[Gateway, _Server]:
    server = _Server(procs)
    _, worker = procs.worker()
    gw = procs.gateway(
        "--worker-urls", worker, "--mcp-registry", str(tmp_path / "registry.db"),
        "--health-check-interval-secs", "3600",
    )  # fmt: skip
    spec = {"name": "sessions", "transport": "streamable-http", "url": server.url, "tool_timeout_secs": 10}
    added = httpx.post(gw.url + "/mcp/servers", json=spec, timeout=60)
    assert added.status_code == 201, added.text
    poll(lambda: gw.metric("smg_mcp_server_connected", server="sessions") == 1, timeout=30, interval=0.2)
    assert server.stats()["open"] == 1  # the server speaks only the handshake protocol: a session exists
    return gw, server


def _admin_call(gw: Gateway, tool: str, text: str = "", **arguments: Any) -> dict[str, Any]:
    url = f"{gw.url}/mcp/servers/sessions/tools/{tool}/call"
    resp = httpx.post(url, json={"arguments": arguments or {"text": text}}, timeout=60)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _loop(gw: Gateway, script: str) -> dict[str, Any]:
    resp = httpx.post(gw.url + CHAT, json=chat(script, tools=MCP), timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    result: dict[str, Any] = resp.json()
    return result


def _state(gw: Gateway) -> dict[str, Any]:
    servers = orjson.loads(httpx.get(gw.url + "/mcp/servers", timeout=10).content)["servers"]
    status: dict[str, Any] = servers[0]["status"]
    return status


def test_a_forgotten_session_is_reopened_and_the_refused_call_is_sent_again_once(
    procs: Procs, tmp_path: Path
) -> None:
    gw, server = _stack(procs, tmp_path)
    assert _admin_call(gw, "echo", "before")["status"] == "ok"

    # The server forgets the session ID but its notification stream stays up: the gateway learns of
    # it only from the 404 to its next request. That call was refused, never run, so even a
    # destructive tool is sent again, once, on a new session.
    assert server.post("/_forget") == {"forgotten": 1}
    refused = _admin_call(gw, "append", "once")
    assert (refused["status"], refused["text"], refused["attempts"]) == ("ok", "appended once", 2)
    stats = server.stats()
    assert stats["calls"] == {"echo": 1, "append": 1}  # the append ran exactly once
    assert stats["not_found"] >= 1 and stats["open"] == 1
    assert gw.metric("smg_mcp_session_reconnects_total", server="sessions") == 1
    assert gw.metric("smg_mcp_tool_calls_total", server="sessions", tool_name="append", result="success") == 1
    assert gw.metric("smg_mcp_tool_calls_total", server="sessions", outcome="unavailable") == 0

    # The same through a tool loop, with chat traffic alongside.
    assert server.post("/_forget") == {"forgotten": 1}
    with SideTraffic(gw.url) as side:
        answer = _loop(gw, 'CALL sessions__echo {"text": "after"}')
    side.assert_none_lost()
    assert [(c["tool"], c["status"]) for c in answer["smg"]["tool_calls"]] == [("echo", "ok")]
    assert answer["choices"][0]["message"]["content"] == "tool results: after"
    assert server.stats()["calls"] == {"echo": 2, "append": 1}
    assert gw.metric("smg_mcp_session_reconnects_total", server="sessions") == 2
    assert gw.metric("smg_mcp_tool_calls_total", server="sessions", tool_name="echo", result="success") == 2
    assert gw.metric("smg_mcp_server_connected", server="sessions") == 1
    status = _state(gw)
    assert (status["state"], status["reconnects"], status["last_error"]) == ("connected", 2, None)


def test_an_ended_session_is_reopened_before_the_next_call(procs: Procs, tmp_path: Path) -> None:
    gw, server = _stack(procs, tmp_path)
    assert _admin_call(gw, "echo", "before")["status"] == "ok"

    # The server ends the session as its idle timeout does: the gateway's notification stream
    # closes, its reconnect is answered 404, and the gateway opens a new session with no call pending.
    with SideTraffic(gw.url) as side:
        assert server.post("/_expire") == {"expired": 1}
        poll(lambda: gw.metric("smg_mcp_session_reconnects_total", server="sessions") == 1, timeout=30)
        poll(lambda: server.stats()["open"] == 1, timeout=30, interval=0.2)
    side.assert_none_lost()
    refused_before = server.stats()["not_found"]
    assert refused_before >= 1

    answer = _loop(gw, 'CALL sessions__append {"text": "fresh"}')
    assert [(c["tool"], c["status"]) for c in answer["smg"]["tool_calls"]] == [("append", "ok")]
    assert answer["choices"][0]["message"]["content"] == "tool results: appended fresh"
    called = _admin_call(gw, "echo", "again")
    assert (called["status"], called["attempts"]) == ("ok", 1)
    stats = server.stats()
    assert stats["calls"] == {"echo": 2, "append": 1}
    assert stats["not_found"] == refused_before  # no call met the ended session
    assert gw.metric("smg_mcp_session_reconnects_total", server="sessions") == 1
    assert gw.metric("smg_mcp_server_connected", server="sessions") == 1
    assert _state(gw)["state"] == "connected"


def test_a_call_running_when_its_session_ends_is_unavailable_and_not_replayed(
    procs: Procs, tmp_path: Path
) -> None:
    gw, server = _stack(procs, tmp_path)
    results: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: results.append(_admin_call(gw, "slow", seconds=30)), daemon=True)
    caller.start()
    poll(lambda: server.stats()["calls"].get("slow") == 1, timeout=30, interval=0.1)

    # The server may have run part of the call: its outcome is unknown, so a destructive call is
    # reported, not sent again.
    assert server.post("/_expire") == {"expired": 1}
    caller.join(60)
    assert not caller.is_alive()
    (ended,) = results
    assert (ended["status"], ended["attempts"]) == ("unavailable", 1)
    assert ended["text"] == "MCP server 'sessions' closed the connection during the call"
    assert server.stats()["calls"] == {"slow": 1}
    labels = {"server": "sessions", "tool_name": "slow", "result": "error", "outcome": "unavailable"}
    assert gw.metric("smg_mcp_tool_calls_total", **labels) == 1

    poll(lambda: gw.metric("smg_mcp_session_reconnects_total", server="sessions") == 1, timeout=30)
    called = _admin_call(gw, "echo", "next")
    assert (called["status"], called["text"]) == ("ok", "next")
