"""`bench.toolloop` runs its figures end to end on a tiny scale: the chat tool loop and the same loop as a
Responses request with an ``mcp`` tool, each checked to have run as scripted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import toolloop

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_the_tool_loop_figures_put_a_responses_loop_beside_the_chat_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the servers run as `python -m mcp_servers.faults`, `-m smg`
    out = toolloop.measure(smoke=True, gw_core=None, logdir=tmp_path)
    chat, responses = out["three_rounds"], out["three_rounds_responses"]
    nostore = out["three_rounds_responses_nostore"]
    for figures in (chat, responses, nostore):
        assert figures["loop_ms"] > 0 and figures["cpu_ms"] >= 0
        assert figures["added_ms"] == pytest.approx(
            figures["loop_ms"] - figures["worker_ms"] - figures["tools_ms"]
        )
    # measured in the same rounds against the same worker and tool figures
    for figures in (responses, nostore):
        assert figures["worker_ms"] == chat["worker_ms"] and figures["tools_ms"] == chat["tools_ms"]


def _answer(call_status: str = "completed", status: str = "completed") -> dict[str, Any]:
    calls = [{"type": "mcp_call", "status": call_status} for _ in range(3)]
    return {
        "status": status,
        "output": [{"type": "mcp_list_tools"}, *calls, {"type": "message"}],
        "smg": {"tool_calls": [{"status": "ok"}] * 3, "iterations": 4},
    }


def test_a_responses_loop_that_did_not_run_as_scripted_is_an_error() -> None:
    toolloop._check_responses_loop(_answer(), 3, 4)
    for wrong in (_answer(call_status="failed"), _answer(status="incomplete")):
        with pytest.raises(RuntimeError, match="did not run as scripted"):
            toolloop._check_responses_loop(wrong, 3, 4)
    unlisted = _answer()
    unlisted["output"] = unlisted["output"][1:]
    with pytest.raises(RuntimeError, match="did not run as scripted"):
        toolloop._check_responses_loop(unlisted, 3, 4)
    with pytest.raises(RuntimeError, match="did not run as scripted"):
        toolloop._check_responses_loop(_answer(), 2, 4)
