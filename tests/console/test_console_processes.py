"""``GET /stats/recent`` under ``--processes 2`` is the instance's: requests served by either process
are counted in the answer of each (every process samples the totals of all of them)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests._procs import CHAT, Procs, chat, poll
from tests.serving._process_tree import children, client_port, holders, kill_all

pytestmark = pytest.mark.e2e

MAX_CONNECTIONS = 64


def _pinned_clients(url: str, serving: list[int]) -> dict[int, httpx.Client]:
    """One single-connection client per serving process (its connection held by that process)."""
    port = int(url.rsplit(":", 1)[1])
    pinned: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    for _ in range(MAX_CONNECTIONS):
        client = httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1))
        local = client_port(client.get("/health"))
        pid = holders([local], port, serving).get(local)
        if pid is not None and pid not in pinned:
            pinned[pid] = client
        else:
            spare.append(client)
        if len(pinned) == len(serving):
            break
    for client in spare:
        client.close()
    return pinned


def test_every_process_answers_the_stats_of_the_whole_instance(procs: Procs, tmp_path: Path) -> None:
    _, worker = procs.worker()
    gw = procs.gateway("--worker-urls", worker, "--processes", "2", "--mcp-registry", str(tmp_path / "m.db"))
    serving = children(gw.proc.pid)
    clients: dict[int, httpx.Client] = {}
    try:
        assert len(serving) == 2
        clients = _pinned_clients(gw.url, serving)
        assert len(clients) == 2, f"no connection reached both processes in {MAX_CONNECTIONS} tries"
        first, second = clients.values()
        for n in range(3):
            assert first.post(CHAT, json=chat(f"first {n}")).status_code == 200
        for n in range(2):
            assert second.post(CHAT, json=chat(f"second {n}")).status_code == 200

        def counted(client: httpx.Client) -> int:
            resp = client.get("/stats/recent")
            assert resp.status_code == 200
            return sum(p["requests"] for p in resp.json()["points"])

        def both() -> bool:  # both asked each time: an idle connection would end at the keep-alive timeout
            seen = counted(first), counted(second)
            return seen == (5, 5)

        ports = {pid: client_port(c.get("/health")) for pid, c in clients.items()}
        # each process samples every 5 s: within a few intervals both have seen all five
        poll(both, timeout=60, interval=0.2)
        assert counted(first) == 5 and counted(second) == 5
        # still the same connections, so still one answer from each process
        assert {pid: client_port(c.get("/health")) for pid, c in clients.items()} == ports
    finally:
        for client in clients.values():
            client.close()
        procs.stop_all()
        kill_all(serving)
