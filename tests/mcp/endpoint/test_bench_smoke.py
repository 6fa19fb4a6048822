"""`bench.mcp_endpoint` runs end to end on a tiny scale: every kind of call is measured, and the
gateway's figures are its own (CPU time spent) beside the direct call's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import mcp_endpoint

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.e2e
def test_the_endpoint_figures_put_each_way_through_the_gateway_beside_a_direct_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the servers run as `python -m mcp_servers.faults`, `-m smg`
    out = mcp_endpoint.measure(calls=5, logdir=tmp_path)

    assert out["calls"] == 5
    assert 0 < out["direct"]["p50_ms"] <= out["direct"]["p95_ms"]
    for kind in ("mcp", "scoped", "mcp_handshake"):
        figures = out[kind]
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
        assert figures["added_p50_ms"] == pytest.approx(figures["p50_ms"] - out["direct"]["p50_ms"])
        assert figures["gateway_cpu_us_per_call"] > 0  # the gateway served each call
