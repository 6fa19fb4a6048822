"""The smg command as a user runs it: the demo, and `smg workers` against a running gateway."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from smg.testing.processes import pid_alive, spawn, stop, wait_for_line
from tests._procs import Procs, poll

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_demo_answers_its_own_curl_and_stops_with_nothing_left_behind() -> None:
    demo = spawn([sys.executable, "-m", "smg", "demo", "--port", "0"])
    try:
        wait_for_line(demo, "smg demo is running")
        # plain answer, tool loop, streamed tool loop
        curls = ["curl " + wait_for_line(demo, "  curl ") for _ in range(3)]
        children = _children(demo.pid)
        assert len(children) >= 4, "the worker and the three stdio MCP servers are children of the demo"

        def run(curl: str) -> str:
            return subprocess.run(
                ["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=True
            ).stdout

        assert json.loads(run(curls[0]))["choices"][0]["message"]["content"] == "echo: Hello from smg"
        loop = json.loads(run(curls[1]))
        assert loop["choices"][0]["message"]["content"].startswith("tool results: ")
        assert [c["status"] for c in loop["smg"]["tool_calls"]] == ["ok", "ok", "ok"]
        events = [
            line.removeprefix("data: ") for line in run(curls[2]).splitlines() if line.startswith("data: ")
        ]
        assert events[-1] == "[DONE]"
        deltas = [choice["delta"] for event in events[:-1] for choice in json.loads(event)["choices"]]
        assert not any("tool_calls" in d for d in deltas)
        assert "".join(d.get("content") or "" for d in deltas).startswith("tool results: ")
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(20) == 0
        poll(lambda: not any(pid_alive(p) for p in children), timeout=10)
    finally:
        stop(demo)


def _smg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smg", *args], capture_output=True, text=True, timeout=60)


def test_workers_cli_lists_adds_and_removes_through_the_admin_api(procs: Procs) -> None:
    _, first = procs.worker()
    _, second = procs.worker()
    _, gw = procs.gateway("--worker-urls", first, "--admin-api-key", "adm", "--api-key", "data")
    common = ("workers", "--gateway", gw, "--admin-key", "adm")

    listed = json.loads(_smg(*common, "list", "--json").stdout)
    assert [w["url"] for w in listed] == [first]

    added = _smg(*common, "add", second, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["url"] == second

    removed = _smg(*common, "remove", first)
    assert removed.returncode == 0
    assert [w["url"] for w in json.loads(_smg(*common, "list", "--json").stdout)] == [second]

    refused = _smg("workers", "--gateway", gw, "--admin-key", "data", "list")
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0 and "403" in refused.stderr
