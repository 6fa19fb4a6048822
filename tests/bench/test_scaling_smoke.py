"""`python -m bench.scaling` runs smg with one and two serving processes end to end on a tiny scale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_scaling_bench_reports_both_process_counts_and_the_efficiency() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scaling", "--no-smg", "--rounds", "1", "--seconds", "1"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert sum(line.startswith(("smg-p1 ", "smg-p2 ")) for line in lines) == 2
    assert any(line.startswith("scaling efficiency of 2 processes: median ") for line in lines)
