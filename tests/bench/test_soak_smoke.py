"""A short run of bench/soak.py: mixed traffic with a flapping worker loses nothing unexplained and
leaves no process behind (speed and memory are reported, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_loses_nothing_unexplained_and_leaks_no_process(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.soak", "--requests", "400", "--flap-interval", "0.3"]
    cmd += ["--settle-secs", "2"]  # the footprint is reported, not asserted: no need to outwait keep-alive
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert (tmp_path / "soak.md").is_file(), done.stderr[-2000:]
    summary = json.loads((tmp_path / "soak.json").read_text())
    assert summary["unexplained_errors"] == {}, summary["unexplained_examples"]
    assert summary["leaked_processes"] == []
    assert summary["ok"] + sum(summary["explained_errors"].values()) == 400
    assert set(summary["ok_by_kind"]) == {"chat", "stream", "loop", "loop_stream", "abandon"}
    assert summary["flap_switches"]  # the worker did flap
    assert summary["gateway_before"]["children"] == summary["gateway_after"]["children"] == 1
    # Streams their clients left, included: once idle the gateway holds no request and no worker call.
    assert summary["gateway_metrics"]["http_connections_active_after_idle"] == 0
    assert summary["gateway_metrics"]["worker_requests_active_after_idle"] == 0
    assert done.returncode == 0, done.stdout[-2000:]
