"""`python -m bench.ab` runs two trees end to end on a tiny scale and reports the paired figures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _ab(*args: str) -> list[str]:
    """The output lines of one tiny `bench.ab` run (1 round of 1 s) with ``args``; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab", *args, "--rounds", "1", "--seconds", "1"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_ab_bench_compares_two_trees_and_reports_the_paired_difference() -> None:
    lines = _ab(f"a={REPO}", f"b={REPO}")
    assert sum(line.startswith(("a c16", "a stream16", "b c16", "b stream16")) for line in lines) == 4
    assert any(line.startswith("b - a c16: median ") and "1 rounds lower" in line for line in lines)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_one_tree_with_the_responses_scenarios_reports_responses_beside_chat() -> None:
    lines = _ab(f"smg={REPO}", "--responses")
    for scenario in ("c16", "resp16", "resp_nostore16", "stream16", "resp_stream16"):
        assert any(line.startswith(f"smg {scenario} ") and " median " in line for line in lines), scenario
    for pair in ("resp16 - c16", "resp_nostore16 - c16", "resp_stream16 - stream16"):
        assert any(line.startswith(f"smg {pair}: median ") and "1 rounds" in line for line in lines), pair


def test_a_tree_without_the_package_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab", f"a={REPO}", "b=/nonexistent"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "expected NAME=TREE, TREE holding smg/" in done.stderr


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_unpinned_c64_layout_reports_its_one_scenario() -> None:
    lines = _ab(f"a={REPO}", f"b={REPO}", "--c64")
    assert sum(line.startswith(("a c64 ", "b c64 ")) for line in lines) == 2
    assert not any(" c16 " in line or "stream16" in line for line in lines)
    assert any(line.startswith("b - a c64: median ") for line in lines)
