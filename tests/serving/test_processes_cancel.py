"""``--processes 2`` and background Responses: a run lives in the serving process that started it, and a
cancel that reaches the other process cancels it there (through the shared store) and answers it
``cancelled``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests._procs import Procs, poll
from tests.serving._process_tree import children, client_port, holders, kill_all

pytestmark = pytest.mark.e2e


def _cancel_through_the_other(url: str, serving: list[int], starter: int, rid: str) -> httpx.Response:
    """POST the cancel on a connection served by the process that did not start the run (bounded tries)."""
    port = int(url.rsplit(":", 1)[1])
    for _ in range(50):
        with httpx.Client(base_url=url, timeout=60) as client:
            probe = client.get("/health")
            if holders([client_port(probe)], port, serving).get(client_port(probe)) in (starter, None):
                continue
            resp = client.post(f"/v1/responses/{rid}/cancel")
            assert client_port(resp) == client_port(probe)
            return resp
    raise AssertionError("no connection reached the other serving process")


def test_a_cancel_reaching_the_other_serving_process_cancels_the_run(procs: Procs, tmp_path: Path) -> None:
    _, worker = procs.worker("--hang")  # its reply never comes: the run stays in progress
    args = ("--worker-urls", worker, "--processes", "2", "--mcp-registry", str(tmp_path / "smg.db"))
    gw = procs.gateway(*args)
    serving = children(gw.proc.pid)
    try:
        body = {"model": "mock-model", "input": "held", "background": True}
        with httpx.Client(base_url=gw.url, timeout=60) as client:
            queued = client.post("/v1/responses", json=body)
            assert queued.status_code == 200, queued.text
            starter = holders([client_port(queued)], int(gw.url.rsplit(":", 1)[1]), serving)[
                client_port(queued)
            ]
        rid = queued.json()["id"]
        poll(lambda: httpx.get(f"{worker}/_smg/stats", timeout=10).json()["chat_requests"] == 1)
        cancelled = _cancel_through_the_other(gw.url, serving, starter, rid)
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["id"], cancelled.json()["status"]) == (rid, "cancelled")
        for _ in range(4):  # whichever process answers
            assert httpx.get(f"{gw.url}/v1/responses/{rid}", timeout=30).json()["status"] == "cancelled"
        errors = {"endpoint": "responses", "error_type": "client_disconnected"}
        assert gw.metric("smg_router_request_errors_total", **errors) == 1  # the run's worker call
    finally:
        procs.stop_all()
        kill_all(serving)
