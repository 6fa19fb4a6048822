"""``--processes 2`` and MCP: a server added through the admin API of one process reaches the other
through the shared registry, each process runs its own copy of a stdio server (the documented choice),
a tool loop gives the same answer from either process, and removing the server through either stops
every copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._helpers import CALC
from tests._procs import CHAT, Procs, chat, poll
from tests.serving._process_tree import children, client_port, cmdline, descendants, holders, kill_all

pytestmark = pytest.mark.e2e

LOOP = chat(
    'CALL calc__evaluate {"expression": "6*7"}',
    tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
)


def _on_a_new_connection(url: str, serving: list[int], method: str, path: str, **kw: Any) -> tuple[int, Any]:
    """One request on a fresh connection -> (the serving PID that answered, the response)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        resp = client.request(method, path, **kw)
        port = client_port(resp)
        return holders([port], int(url.rsplit(":", 1)[1]), serving)[port], resp


def _remove_through(url: str, serving: list[int], pid: int) -> bool:
    """DELETE the calc server on a connection served by process ``pid`` (bounded tries)."""
    port = int(url.rsplit(":", 1)[1])
    for _ in range(50):
        with httpx.Client(base_url=url, timeout=60) as client:
            probe = client.get("/health")
            if holders([client_port(probe)], port, serving).get(client_port(probe)) != pid:
                continue
            resp = client.delete("/mcp/servers/calc")
            assert client_port(resp) == client_port(probe) and resp.status_code in (200, 204), resp.text
            return True
    return False


def _stdio_copies(supervisor: int) -> list[int]:
    return [pid for pid in descendants(supervisor) if "mcp_servers.calc" in cmdline(pid)]


def test_an_mcp_server_added_through_one_process_is_used_by_both_and_removed_from_both(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker()
    registry = str(tmp_path / "mcp.db")
    gw = procs.gateway("--worker-urls", worker, "--processes", "2", "--mcp-registry", registry)
    serving = children(gw.proc.pid)
    seen: list[int] = []
    try:
        adder, resp = _on_a_new_connection(gw.url, serving, "POST", "/mcp/servers", json=CALC)
        assert resp.status_code == 201, resp.text

        listed: dict[int, bool] = {}

        def both_list_it() -> bool:
            pid, resp = _on_a_new_connection(gw.url, serving, "GET", "/mcp/servers")
            listed[pid] = any(s["name"] == "calc" for s in resp.json()["servers"])
            return len(listed) == 2 and all(listed.values())

        poll(both_list_it, timeout=60)
        seen += poll(lambda: (found := _stdio_copies(gw.proc.pid)) and len(found) == 2 and found, timeout=60)

        answered: dict[int, str] = {}

        def both_answer() -> bool:
            pid, resp = _on_a_new_connection(gw.url, serving, "POST", CHAT, json=LOOP)
            assert resp.status_code == 200, resp.text
            answered[pid] = resp.json()["choices"][0]["message"]["content"]
            return len(answered) == 2

        poll(both_answer, timeout=60)
        assert all("42" in text for text in answered.values()), answered

        assert _remove_through(gw.url, serving, next(pid for pid in serving if pid != adder))
        poll(lambda: _stdio_copies(gw.proc.pid) == [], timeout=60)
    finally:
        procs.stop_all()
        kill_all([*serving, *seen])
