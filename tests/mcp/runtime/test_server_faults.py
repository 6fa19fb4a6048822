"""MCP faults beyond a crashed server (test_servers_under_a_gateway_process.py): huge and hostile tool
output, the tool list changing while a request runs, and a server restarted between calls (its session
lost); real processes throughout."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests._procs import CHAT, Gateway, Procs, SideTraffic, chat, poll, stream_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

CAP = 64 * 1024
MCP = [{"type": "mcp", "server_label": "faults", "require_approval": "never"}]


def _stack(procs: Procs, tmp_path: Path, *, port: int = 0, tool_timeout: float = 10) -> tuple[Gateway, str]:
    _, mcp_url = procs.mcp_faults(port)
    _, worker = procs.worker()
    gw = procs.gateway(
        "--worker-urls", worker, "--mcp-registry", str(tmp_path / "registry.db"),
        "--health-check-interval-secs", "3600", "--mcp-max-tool-output-bytes", str(CAP),
    )  # fmt: skip
    spec = {"name": "faults", "transport": "streamable-http", "url": mcp_url}
    spec["tool_timeout_secs"] = tool_timeout
    added = httpx.post(gw.url + "/mcp/servers", json=spec, timeout=60)
    assert added.status_code == 201, added.text
    return gw, mcp_url


def _loop(gw: Gateway, script: str, **extra: Any) -> dict[str, Any]:
    resp = httpx.post(gw.url + CHAT, json=chat(script, tools=MCP, **extra), timeout=120)
    assert resp.status_code == 200, resp.text[:500]
    result: dict[str, Any] = resp.json()
    return result


def _statuses(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["tool"], c["status"]) for c in answer["smg"]["tool_calls"]]


def test_huge_tool_output_is_fed_back_whole_and_hostile_output_stays_valid_json(
    procs: Procs, tmp_path: Path
) -> None:
    gw, _ = _stack(procs, tmp_path)
    with SideTraffic(gw.url) as side:
        fits = _loop(gw, f'CALL faults__huge {{"size_bytes": {CAP}}}')
        huge = _loop(gw, 'CALL faults__huge {"size_bytes": 1048576}')
        garbage = _loop(gw, 'CALL faults__garbage {"seed": 7}')
        body = chat('CALL faults__garbage {"seed": 8}', tools=MCP, stream=True)
        with httpx.stream("POST", gw.url + CHAT, json=body, timeout=60) as resp:
            assert resp.status_code == 200
            streamed, error = stream_outcome(resp.read())
    side.assert_none_lost()

    assert _statuses(fits) == [("huge", "ok")]
    assert fits["choices"][0]["message"]["content"] == "tool results: " + "x" * CAP
    # 1 MiB of output (within the 1.125 MiB read of one message) reaches the model cut to the cap, with
    # a marker saying so; larger results are refused whole (test_mcp_large_results.py).
    assert _statuses(huge) == [("huge", "ok")]
    kept, marker = huge["choices"][0]["message"]["content"].split("\n", 1)
    assert kept == "tool results: " + "x" * CAP
    assert marker.startswith("[smg: tool output truncated: 1048576 bytes")
    assert _statuses(garbage) == [("garbage", "ok")]
    content = garbage["choices"][0]["message"]["content"]
    assert "ESC[\x1b[31mred" in content and "NUL[\x00]" in content
    assert "[image content (image/png) omitted]" in content
    assert error is None and streamed.startswith("tool results: NUL[\x00]")
    assert gw.metric("smg_mcp_tool_calls_total", server="faults", tool_name="huge", result="success") == 2
    assert gw.metric("smg_mcp_tool_calls_total", server="faults", tool_name="garbage", result="success") == 2


def test_a_tool_removed_while_a_request_runs_is_a_readable_tool_error_and_new_tools_appear_after(
    procs: Procs, tmp_path: Path
) -> None:
    gw, _ = _stack(procs, tmp_path)
    first = _loop(gw, 'CALL faults__set_tools {"extra": ["dyn_a"]}')
    assert _statuses(first) == [("set_tools", "ok")]

    # tools/list_changed invalidated the cached list: the next request is offered dyn_a.
    def offered() -> bool:
        answer = _loop(gw, 'CALL faults__dyn_a {"text": "hello"}')
        return _statuses(answer) == [("dyn_a", "ok")]

    poll(offered, timeout=20, interval=0.2)
    assert gw.metric("smg_mcp_tool_list_refreshes_total", server="faults", reason="list_changed") >= 1

    # The plan of this request offers dyn_a; round 1 removes it, round 2 still calls it.
    script = 'CALL faults__set_tools {"extra": []}\nNEXT\nCALL faults__dyn_a {"text": "gone"}'
    with SideTraffic(gw.url) as side:
        answer = _loop(gw, script)
    side.assert_none_lost()
    assert _statuses(answer) == [("set_tools", "ok"), ("dyn_a", "error")]
    assert "dyn_a" in answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert gw.metric("smg_mcp_tool_calls_total", server="faults", tool_name="dyn_a", result="error") == 1


def test_a_server_restarted_between_calls_is_reconnected_and_the_next_call_succeeds(
    procs: Procs, tmp_path: Path
) -> None:
    gw, mcp_url = _stack(procs, tmp_path)
    port = int(mcp_url.rsplit(":", 1)[1].split("/")[0])
    before = _loop(gw, "CALL faults__pid {}")
    assert _statuses(before) == [("pid", "ok")]
    old_pid = int(before["choices"][0]["message"]["content"].removeprefix("tool results: "))

    os.kill(old_pid, signal.SIGTERM)  # a graceful restart: every session of the old process is gone
    poll(lambda: gw.metric("smg_mcp_server_connected", server="faults") == 0, timeout=20)
    new, _ = procs.mcp_faults(port)
    poll(lambda: gw.metric("smg_mcp_server_connected", server="faults") == 1, timeout=30, interval=0.2)

    with SideTraffic(gw.url) as side:
        after = _loop(gw, "CALL faults__pid {}")
    side.assert_none_lost()
    assert _statuses(after) == [("pid", "ok")]
    assert after["choices"][0]["message"]["content"] == f"tool results: {new.pid}"
    assert gw.metric("smg_mcp_session_reconnects_total", server="faults") >= 1
    servers = orjson.loads(httpx.get(gw.url + "/mcp/servers", timeout=10).content)["servers"]
    assert servers[0]["status"]["state"] == "connected"


def test_a_frozen_server_times_its_calls_out_and_serves_again_after_cont(
    procs: Procs, tmp_path: Path
) -> None:
    gw, _ = _stack(procs, tmp_path, tool_timeout=1)
    answer = _loop(gw, "CALL faults__pid {}")
    pid = int(answer["choices"][0]["message"]["content"].removeprefix("tool results: "))
    os.kill(pid, signal.SIGSTOP)
    try:
        with SideTraffic(gw.url) as side:
            frozen = _loop(gw, 'CALL faults__echo {"text": "cold"}')
        side.assert_none_lost()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert _statuses(frozen) == [("echo", "timeout")]
    assert "timed out" in frozen["choices"][0]["message"]["content"]
    assert frozen["choices"][0]["finish_reason"] == "stop"
    assert (
        gw.metric(
            "smg_mcp_tool_calls_total", server="faults", tool_name="echo", result="error", outcome="timeout"
        )
        >= 1
    )

    def thawed() -> bool:
        return _statuses(_loop(gw, 'CALL faults__echo {"text": "warm"}')) == [("echo", "ok")]

    poll(thawed, timeout=30, interval=0.2)


def test_tool_loops_during_repeated_server_restarts_all_answer_and_the_server_is_used_after(
    procs: Procs, tmp_path: Path
) -> None:
    gw, mcp_url = _stack(procs, tmp_path, tool_timeout=5)
    port = int(mcp_url.rsplit(":", 1)[1].split("/")[0])
    server = procs.started[0]
    assert _outcome(0, _loop(gw, 'CALL faults__echo {"text": "r0"}')) == "ok"  # the session is up
    answers: list[dict[str, Any]] = []

    def loops() -> None:
        for i in range(30):
            answers.append(_loop(gw, f'CALL faults__echo {{"text": "r{i}"}}'))

    client = threading.Thread(target=loops, daemon=True)
    client.start()
    for _ in range(3):
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        server, _ = procs.mcp_faults(port)
    client.join(120)
    assert not client.is_alive()
    assert len(answers) == 30  # every loop answered 200 (asserted in _loop)
    outcomes = Counter(_outcome(i, answer) for i, answer in enumerate(answers))
    assert set(outcomes) <= {"ok", "unavailable", "left_out"}, outcomes
    # Reconnect attempts back off (0.5 s doubling, at most 30 s): the server is used again after that.
    poll(lambda: _outcome(0, _loop(gw, 'CALL faults__echo {"text": "r0"}')) == "ok", timeout=60, interval=0.5)
    assert gw.metric("smg_mcp_session_reconnects_total", server="faults") >= 1


def _outcome(i: int, answer: dict[str, Any]) -> str:
    """How a tool loop went while its server restarted: the call ran ("ok"), failed on the lost
    connection ("unavailable"), or the server was down when the request came and was left out of its
    tool list (the model then got no tools and answered directly)."""
    content = answer["choices"][0]["message"]["content"]
    if "smg" not in answer:
        return "left_out" if content.startswith("echo: CALL faults__echo") else f"odd: {content[:80]}"
    (call,) = answer["smg"]["tool_calls"]
    if call["status"] == "ok":
        return "ok" if content == f"tool results: r{i}" else f"odd: {content[:80]}"
    return str(call["status"])
