"""`python -m bench.slowreaders` runs end to end on a tiny scale and writes its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_slow_reader_bench_runs_and_reports_every_figure(tmp_path: Path) -> None:
    args = ["--streams", "3", "--words", "300", "--hold-secs", "1", "--idle-secs", "0", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.slowreaders", *args, "--out", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "slowreaders.json").read_text())
    assert (result["streams"], result["words"], len(result["rounds"])) == (3, 300, 1)
    [figures] = result["rounds"]
    assert min(figures["peak_mib"], figures["idle_mib"], result["baseline_mib"]) > 0
    assert figures["client_bytes_read"] > 0
    assert figures["probes_ok"] == figures["probes_sent"] >= 1
    assert "| 1 |" in (tmp_path / "slowreaders.md").read_text()
