"""``--processes 2``: one port served by two processes under a supervisor. Ten thousand chat requests
over concurrent keep-alive connections are all answered, both processes serve some of them (the
server side of each client connection is found in /proc), and the supervisor's /metrics counts
exactly ten thousand. With ``--processes 1`` the gateway is the one process it always was."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests._procs import CHAT, Procs, chat
from tests.serving._process_tree import children, client_port, kill_all, served_per_process

pytestmark = pytest.mark.e2e

TOTAL = 10_000
CONCURRENCY = 32


async def _load(url: str, serving: list[int]) -> tuple[Counter[int], Counter[int]]:
    """Send TOTAL chat requests over CONCURRENCY connections -> (statuses, requests per serving PID)."""
    statuses: Counter[int] = Counter()
    per_port: Counter[int] = Counter()
    numbers = iter(range(TOTAL))
    # A connection left idle is dropped by the client after 1 s, well before the server's keep-alive
    # timeout (5 s): reusing one the server is closing at that moment fails with a ReadError (seen once in
    # CI), a race of the client's expiry (httpx's default is also 5 s) with the server's, not a lost request.
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def sender() -> None:
            for i in numbers:
                resp = await client.post(CHAT, json=chat(f"r{i}"))
                statuses[resp.status_code] += 1
                per_port[client_port(resp)] += 1

        async with asyncio.timeout(600):
            await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
        # while the connections are still open: which process holds each one's server side
        served = served_per_process(per_port, int(url.rsplit(":", 1)[1]), serving)
    return statuses, served


def test_two_processes_share_ten_thousand_requests_and_metrics_count_each_exactly_once(
    procs: Procs, tmp_path: Path
) -> None:
    # The worker's 20 ms keeps all CONCURRENCY connections busy at once: against an instant worker the
    # client is the bottleneck, reuses one connection, and every request reaches one process.
    _, worker = procs.worker("--delay-ms", "20")
    gw = procs.gateway(
        "--worker-urls", worker, "--processes", "2", "--mcp-registry", str(tmp_path / "mcp.db")
    )
    serving = children(gw.proc.pid)
    try:
        assert len(serving) == 2
        statuses, served = asyncio.run(_load(gw.url, serving))

        assert statuses == {200: TOTAL}
        assert served[serving[0]] > 0 and served[serving[1]] > 0, served
        assert gw.metric("smg_router_requests_total", endpoint="chat") == TOTAL
        assert gw.metric("smg_http_requests_total", path=CHAT) == TOTAL
        assert gw.metric("smg_http_responses_total", path=CHAT, status_code="200") == TOTAL
        assert gw.metric("smg_http_connections_active") == 0
    finally:
        procs.stop_all()
        kill_all(serving)


def test_one_process_is_the_gateway_itself_without_a_supervisor_or_a_multiprocess_directory(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker()
    gw = procs.gateway(
        "--worker-urls", worker, "--processes", "1", "--mcp-registry", str(tmp_path / "mcp.db")
    )
    assert children(gw.proc.pid) == []
    with open(f"/proc/{gw.proc.pid}/environ", "rb") as env:
        assert b"PROMETHEUS_MULTIPROC_DIR" not in env.read()
    assert httpx.post(f"{gw.url}{CHAT}", json=chat("one"), timeout=30).status_code == 200
    assert gw.metric("smg_http_requests_total", path=CHAT) == 1
