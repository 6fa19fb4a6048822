"""``--processes 2``, one serving process SIGKILLed under load while it holds a stream: requests go on
being answered by the other, the supervisor starts a replacement, and /metrics stays exact: the dead
process's counts are kept, its live gauges (a request in flight) are gone."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from smg.testing.processes import pid_alive
from tests._procs import CHAT, Procs, chat, poll
from tests.serving._process_tree import children, client_port, holders, kill_all, served_per_process

pytestmark = pytest.mark.e2e

BEFORE, AFTER = 400, 200


async def _burst(url: str, total: int, serving: list[int]) -> tuple[Counter[int], Counter[int]]:
    """``total`` chat requests over 8 connections -> (statuses, requests per serving PID)."""
    statuses: Counter[int] = Counter()
    per_port: Counter[int] = Counter()
    numbers = iter(range(total))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def sender() -> None:
            for i in numbers:
                resp = await client.post(CHAT, json=chat(f"b{i}"))
                statuses[resp.status_code] += 1
                per_port[client_port(resp)] += 1

        async with asyncio.timeout(300):
            await asyncio.gather(*(sender() for _ in range(8)))
        served = served_per_process(per_port, int(url.rsplit(":", 1)[1]), serving)
    return statuses, served


class _Load:
    """Chat requests on fresh connections from a background thread until stopped; counts outcomes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = self.failed = 0
        self.streak = 0  # consecutive answers since the last failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                resp = httpx.post(f"{self.url}{CHAT}", json=chat(f"l{i}"), timeout=30)
                good = resp.status_code == 200
            except httpx.TransportError:
                good = False
            self.ok, self.failed = self.ok + good, self.failed + (not good)
            self.streak = self.streak + 1 if good else 0
            i += 1

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()


def test_a_killed_serving_process_is_replaced_and_the_metrics_keep_its_counts_but_not_its_gauges(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker("--chunk-delay-ms", "200")
    gw = procs.gateway(
        "--worker-urls", worker, "--processes", "2", "--mcp-registry", str(tmp_path / "mcp.db")
    )
    port = int(gw.url.rsplit(":", 1)[1])
    serving = children(gw.proc.pid)
    started = list(serving)
    try:
        before, served = 0, Counter[int]()
        for _ in range(5):  # until both processes served some: the kernel may hand one all 8 connections
            statuses, more = asyncio.run(_burst(gw.url, BEFORE, serving))
            assert statuses == {200: BEFORE}
            before, served = before + BEFORE, served + more
            if all(served[pid] > 0 for pid in serving):
                break
        assert gw.metric("smg_http_requests_total", path=CHAT) == before

        words = " ".join(f"w{i}" for i in range(200))  # 40 s of stream: in flight when its process dies
        with (
            httpx.Client(base_url=gw.url, timeout=60) as client,
            client.stream("POST", CHAT, json=chat(words, stream=True)) as stream,
        ):
            chunks = stream.iter_bytes()
            next(chunks)
            victim = holders([client_port(stream)], port, serving)[client_port(stream)]
            assert served[victim] > 0  # the process about to die counted some of the burst
            assert gw.metric("smg_http_connections_active") == 1
            with _Load(gw.url) as load:
                poll(lambda: load.ok >= 20, timeout=60)
                os.kill(victim, signal.SIGKILL)
                poll(lambda: not pid_alive(victim), timeout=10)
                poll(lambda: len(children(gw.proc.pid)) == 2, timeout=30)  # the replacement
                started += children(gw.proc.pid)
                poll(lambda: load.streak >= 50, timeout=60)  # answered on after the kill
            with pytest.raises(httpx.HTTPError):
                for _ in chunks:
                    pass

        survivor = next(pid for pid in serving if pid != victim)
        assert pid_alive(survivor) and victim not in children(gw.proc.pid)
        assert load.failed <= 2  # at most what the dead process held when it died
        # the dead process's gauge of its stream in flight is gone; its counts stay
        poll(lambda: gw.metric("smg_http_connections_active") == 0, timeout=15)
        counted = gw.metric("smg_http_requests_total", path=CHAT)
        assert before + load.ok <= counted <= before + load.ok + load.failed
        statuses, _ = asyncio.run(_burst(gw.url, AFTER, children(gw.proc.pid)))
        assert statuses == {200: AFTER}
        assert gw.metric("smg_http_requests_total", path=CHAT) == counted + AFTER
    finally:
        procs.stop_all()
        kill_all(started)
