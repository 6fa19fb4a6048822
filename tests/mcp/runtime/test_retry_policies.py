"""tenacity runs the MCP connection's retry policies: the replay of a tool call whose first attempt
says another is safe (never for a call answered at once), and the owner's reconnect backoff, which
starts again from the first delay after every established session. Real MCP servers on 127.0.0.1."""

from __future__ import annotations

import anyio
import pytest
from tenacity import retry_if_result

from smg.mcp.runtime.hooks import Backoff
from smg.mcp.runtime.retrying import TOOL_CALL_ATTEMPTS
from smg.mcp.types import ToolOutcome
from tests.mcp.runtime._support import (
    FAST_BACKOFF,
    RecordingObserver,
    eventually,
    free_port,
    http_spec,
    make_pool,
)
from tests.mcp_servers._helpers import Launcher
from tests.tenacity_spy import Run, record_tenacity_runs

pytestmark = pytest.mark.e2e


def _replays(runs: list[Run]) -> list[Run]:
    return [run for run in runs if isinstance(run.controller.retry, retry_if_result)]


def _reconnects(runs: list[Run]) -> list[Run]:
    return [run for run in runs if not isinstance(run.controller.retry, retry_if_result)]


def _waited(backoff: Backoff, run: Run) -> float:
    """What the reconnect backoff schedules before tenacity's attempts 2 .. ``run.attempts``."""
    return sum(backoff.delay(n) for n in range(1, run.attempts))


async def test_only_a_call_whose_first_attempt_asks_for_another_is_replayed_under_tenacity(
    launch: Launcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await launch("faults", "streamable-http", "--port", str(free_port()))
    async with make_pool(ready_timeout=5.0) as pool:
        await pool.reconcile([http_spec("faults", server.url)])
        await pool.list_tools()
        runs = record_tenacity_runs(monkeypatch)

        echoed = await pool.call_tool("faults", "echo", {"text": "plain"})
        assert (echoed.status, echoed.attempts) == ("ok", 1)
        assert runs == []  # answered at once: no controller was built

        outcome: list[ToolOutcome] = []

        async def hang() -> None:
            outcome.append(await pool.call_tool("faults", "hang", {}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            await anyio.wait_all_tasks_blocked()
            server.process.kill()

    # hang is read-only: the session died under it, so the policy sent it once more (which failed too)
    assert (outcome[0].status, outcome[0].attempts) == ("unavailable", TOOL_CALL_ATTEMPTS)
    (replay,) = _replays(runs)
    assert replay.attempts == TOOL_CALL_ATTEMPTS
    assert replay.idle_for == 0.0  # no wait: the second attempt waits for the owner's new session


async def test_a_call_that_is_not_retry_safe_is_never_handed_to_tenacity(
    launch: Launcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await launch("faults")
    async with make_pool() as pool:
        await pool.reconcile([http_spec("faults", server.url)])
        await pool.list_tools()
        runs = record_tenacity_runs(monkeypatch)
        crashed = await pool.call_tool("faults", "crash", {})

    assert (crashed.status, crashed.attempts) == ("unavailable", 1)
    assert _replays(runs) == []


async def test_reconnects_to_a_server_that_is_down_back_off_under_tenacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delays: list[float] = []

    async def sleep(secs: float) -> None:
        delays.append(secs)
        if len(delays) >= 4:
            await anyio.sleep_forever()  # until the pool closes

    runs = record_tenacity_runs(monkeypatch)
    observer = RecordingObserver()
    async with make_pool(sleep=sleep, observer=observer) as pool:
        await pool.reconcile([http_spec("down", f"http://127.0.0.1:{free_port()}/mcp")])
        await eventually(lambda: len(delays) >= 4)
        [status] = pool.statuses()

    assert delays == [FAST_BACKOFF.delay(n) for n in (1, 2, 3, 4)]
    (run,) = _reconnects(runs)
    assert run.attempts == 5  # the failed first connect, three more, and the fifth due after the wait
    assert run.idle_for == pytest.approx(sum(delays))
    assert status.state == "failed" and status.last_error
    assert ("state", "down", "failed") in observer.events


async def test_the_reconnect_backoff_starts_again_after_every_established_session(
    launch: Launcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    first = await launch("faults", "streamable-http", "--port", str(port))
    backoff = Backoff(initial=0.05, maximum=0.2)
    runs = record_tenacity_runs(monkeypatch)
    observer = RecordingObserver()
    async with make_pool(backoff=backoff, observer=observer, ready_timeout=10.0) as pool:
        await pool.reconcile([http_spec("faults", first.url)])
        await pool.list_tools()
        first.process.kill()
        await eventually(lambda: len(_reconnects(runs)) == 1 and _reconnects(runs)[0].attempts >= 3)

        second = await launch("faults", "streamable-http", "--port", str(port))
        assert (await pool.call_tool("faults", "echo", {"text": "back"})).status == "ok"
        second.process.kill()
        await eventually(lambda: len(_reconnects(runs)) == 2)

    lost, again = _reconnects(runs)
    # The first outage: the lost session, failed connects while the server was down, then a session
    # that got established (and served until the second kill), which ended this run.
    assert lost.attempts >= 3
    assert lost.idle_for == pytest.approx(_waited(backoff, lost))
    # The second outage is a new run whose first wait is the first delay again.
    assert again.attempts >= 1
    assert again.idle_for == pytest.approx(_waited(backoff, again))
    assert ("state", "faults", "reconnecting") in observer.events
    assert ("reconnect", "faults") in observer.events
