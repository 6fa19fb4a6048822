"""Two 50 MiB tool results at once through a real gateway, from a stdio MCP server: each fails alone with
a readable tool error, a call beside them on the same server and one on another server are answered, the
session survives, and the gateway's memory grows by far less than one such result."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mcp_servers.faults import MAX_HUGE_BYTES
from tests._procs import CHAT, Gateway, Procs, chat, poll

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

CAP = 64 * 1024
MIB = 1024 * 1024


def _servers(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.yaml"
    servers = [
        {
            "name": name,
            "protocol": "stdio",
            "command": sys.executable,
            "args": ["-m", f"mcp_servers.{name}", "--transport", "stdio", "--log-level", "WARNING"],
        }
        for name in ("faults", "calc")
    ]
    path.write_text(yaml.safe_dump({"servers": servers}))
    return path


def _statuses(gw: Gateway) -> dict[str, dict[str, Any]]:
    servers = httpx.get(gw.url + "/mcp/servers", timeout=10).json()["servers"]
    return {server["name"]: server["status"] for server in servers}


def _loop(gw: Gateway, script: str, server: str) -> dict[str, Any]:
    tools = [{"type": "mcp", "server_label": server, "require_approval": "never"}]
    resp = httpx.post(gw.url + CHAT, json=chat(script, tools=tools), timeout=120)
    assert resp.status_code == 200, resp.text[:500]
    answer: dict[str, Any] = resp.json()
    return answer


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_two_huge_stdio_results_fail_alone_and_the_gateway_holds_little_of_them(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker()
    gw = procs.gateway(
        "--worker-urls", worker, "--mcp-config-path", str(_servers(tmp_path)),
        "--mcp-registry", str(tmp_path / "registry.db"), "--mcp-max-tool-output-bytes", str(CAP),
    )  # fmt: skip
    poll(lambda: all(s["state"] == "connected" for s in _statuses(gw).values()) or None, timeout=60)
    _loop(gw, 'CALL faults__echo {"text": "warm"}', "faults")
    pid = gw.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # restarts the peak RSS (VmHWM) from the current RSS
    rss_before = _kib(pid, "VmRSS")

    huge = f'CALL faults__huge {{"size_bytes": {MAX_HUGE_BYTES}}}'
    jobs = [
        (huge, "faults"),
        (huge, "faults"),
        ('CALL faults__echo {"text": "beside"}', "faults"),
        ('CALL calc__evaluate {"expression": "6 * 7"}', "calc"),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: _loop(gw, *job), jobs))
    peak_growth = _kib(pid, "VmHWM") - rss_before
    after = _loop(gw, 'CALL faults__echo {"text": "afterwards"}', "faults")

    calls = [[(c["tool"], c["status"]) for c in answer["smg"]["tool_calls"]] for answer in answers]
    assert calls == [[("huge", "error")], [("huge", "error")], [("echo", "ok")], [("evaluate", "ok")]]
    for answer in answers[:2]:  # the model read why the call failed
        assert "--mcp-max-tool-output-bytes" in answer["choices"][0]["message"]["content"]
    assert [a["choices"][0]["message"]["content"] for a in answers[2:]] == [
        "tool results: beside",
        "tool results: 42",
    ]
    assert after["choices"][0]["message"]["content"] == "tool results: afterwards"
    assert _statuses(gw)["faults"]["reconnects"] == 0
    # 100 MiB of results crossed the gateway; it held at most about a message's limit of them at once.
    assert peak_growth * 1024 < 32 * MIB, f"peak RSS grew by {peak_growth} KiB"
