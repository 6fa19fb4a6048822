"""The Responses API of a real gateway process: a conversation that outlives the process, and the
examples of docs/responses.md run as written (URL aside) with the official openai client."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import openai
import pytest

from smg.testing.processes import spawn, stop, wait_for_line
from tests._procs import Procs, poll

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "responses.md"


def test_a_three_turn_chain_continues_after_the_gateway_process_restarts(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker()
    args = ("--worker-urls", worker, "--mcp-registry", str(tmp_path / "smg.db"))
    first = procs.gateway(*args)
    with openai.OpenAI(base_url=first.url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
        one = oai.responses.create(model="mock-model", input="turn one")
        two = oai.responses.create(model="mock-model", input="turn two", previous_response_id=one.id)
    assert stop(first.proc) == 0
    second = procs.gateway(*args)
    with openai.OpenAI(base_url=second.url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
        three = oai.responses.create(model="mock-model", input="turn three", previous_response_id=two.id)
        assert oai.responses.retrieve(one.id).output_text == "echo: turn one"
    assert three.output_text == "echo: turn three"
    sent = httpx.get(worker + "/_smg/requests", timeout=10).json()[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == [
        "turn one",
        "echo: turn one",
        "turn two",
        "echo: turn two",
        "turn three",
    ]
    assert second.metric("smg_router_requests_total", endpoint="responses") == 1


def test_the_examples_of_the_responses_doc_run(procs: Procs, tmp_path: Path) -> None:
    _, worker = procs.worker()
    clock = spawn(
        [sys.executable, "-m", "mcp_servers.clock", "--transport", "streamable-http", "--port", "0"]
    )
    procs.started.append(clock)
    clock_url = wait_for_line(clock, "MCP_SERVER_READY")
    gateway = procs.gateway("--worker-urls", worker, "--mcp-registry", str(tmp_path / "smg.db"))
    server = {"name": "clock", "transport": "streamable-http", "url": clock_url}
    assert httpx.post(gateway.url + "/mcp/servers", json=server, timeout=60).status_code == 201
    first_steps = DOC.read_text().partition("## With openai-agents")[0]  # that one: test_openai_agents.py
    blocks = re.findall(r"```python\n(.*?)```", first_steps, flags=re.DOTALL)
    assert len(blocks) == 3
    scope: dict[str, object] = {}
    for block in blocks:
        exec(block.replace("http://127.0.0.1:30000", gateway.url), scope)  # the doc's own code
    first, response = scope["first"], scope["response"]
    assert first.output_text == "echo: the quick brown fox"  # type: ignore[attr-defined]
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]  # type: ignore[attr-defined]
    held, request, resumed = scope["held"], scope["request"], scope["resumed"]
    assert [item.type for item in held.output] == ["mcp_list_tools", "mcp_approval_request"]  # type: ignore[attr-defined]
    assert [item.type for item in resumed.output] == ["mcp_call", "message"]  # type: ignore[attr-defined]
    assert resumed.output[0].approval_request_id == request.id  # type: ignore[attr-defined]
    assert "Asia/Tokyo" in resumed.output[0].arguments  # type: ignore[attr-defined]
    assert gateway.metric("smg_mcp_approvals_total", decision="approved") == 1


def test_a_background_run_of_one_gateway_process_is_cancelled_through_another(
    procs: Procs, tmp_path: Path
) -> None:
    worker_proc, worker = procs.worker("--hang")  # its reply never comes: the run stays in progress
    shared = ("--worker-urls", worker, "--mcp-registry", str(tmp_path / "smg.db"))
    a = procs.gateway(*shared, "--responses-max-background", "1")
    b = procs.gateway(*shared)  # started before the run: a gateway's start fails runs left unfinished
    body = {"model": "mock-model", "input": "held", "background": True}
    with httpx.Client(timeout=60) as http:
        queued = http.post(a.url + "/v1/responses", json=body)
        assert queued.status_code == 200, queued.text
        rid = queued.json()["id"]
        poll(lambda: http.get(f"{worker}/_smg/stats").json()["chat_requests"] == 1)
        assert http.get(f"{a.url}/v1/responses/{rid}").json()["status"] == "in_progress"
        assert http.get(f"{b.url}/v1/responses/{rid}").json()["status"] == "queued"  # as stored
        cancelled = http.post(f"{b.url}/v1/responses/{rid}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["id"], cancelled.json()["status"]) == (rid, "cancelled")
        for gateway in (a, b):
            assert http.get(f"{gateway.url}/v1/responses/{rid}").json()["status"] == "cancelled"
        # A's run ended as a locally cancelled one does: its worker call cancelled, counted, its slot free
        assert (
            a.metric(
                "smg_router_request_errors_total", endpoint="responses", error_type="client_disconnected"
            )
            == 1
        )
        assert http.post(f"{worker}/_smg/faults", json={"hang": False}).status_code == 200
        again = http.post(a.url + "/v1/responses", json=body)
        assert again.status_code == 200, again.text
        assert http.post(f"{b.url}/v1/responses/{rid}/cancel").json()["status"] == "cancelled"
    assert worker_proc.poll() is None


def test_a_gateway_process_that_starts_keeps_a_live_siblings_background_run_and_fails_a_killed_ones(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker("--hang")  # its reply never comes: the run stays in progress
    shared = ("--worker-urls", worker, "--mcp-registry", str(tmp_path / "smg.db"))
    a = procs.gateway(*shared)
    body = {"model": "mock-model", "input": "held", "background": True}
    with httpx.Client(timeout=60) as http:
        rid = http.post(a.url + "/v1/responses", json=body).json()["id"]
        poll(lambda: http.get(f"{worker}/_smg/stats").json()["chat_requests"] == 1)
        b = procs.gateway(*shared)  # as a serving process restarted beside a live one
        assert http.get(f"{b.url}/v1/responses/{rid}").json()["status"] == "queued"  # as stored, not failed
        assert http.get(f"{a.url}/v1/responses/{rid}").json()["status"] == "in_progress"
        a.proc.kill()
        a.proc.wait(timeout=30)
        c = procs.gateway(*shared)  # the run's process is gone: nothing will finish it
        for gateway in (b, c):
            assert http.get(f"{gateway.url}/v1/responses/{rid}").json()["status"] == "failed"
