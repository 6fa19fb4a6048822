"""A call (or a check) that finds its server without a session wakes the owner's reconnect instead of
leaving it to the backoff, and the wake is bounded: one early attempt at most per ``wake_interval`` after
the previous attempt ended. Time is a fake clock that only the test moves, so a backoff of an hour never
elapses by itself and the attempts a dead server sees are counted, not timed."""

from __future__ import annotations

import anyio
import pytest

from smg.mcp.runtime.hooks import Backoff
from tests.mcp.runtime._support import (
    FakeTime,
    RecordingObserver,
    eventually,
    free_port,
    http_spec,
    make_pool,
)
from tests.mcp_servers._helpers import Launcher

pytestmark = pytest.mark.e2e

HOUR = Backoff(initial=3600.0, maximum=3600.0)  # a reconnect backoff that never ends on its own here


async def test_a_call_after_a_restart_wakes_the_reconnect_and_is_served_without_waiting_the_backoff(
    launch: Launcher,
) -> None:
    port = free_port()
    first = await launch("faults", "streamable-http", "--port", str(port))
    time, observer = FakeTime(), RecordingObserver()
    pool = make_pool(backoff=HOUR, clock=time.clock, sleep=time.sleep, observer=observer, ready_timeout=5.0)
    async with pool:
        await pool.reconcile([http_spec("faults", first.url)])
        await pool.list_tools()
        # `crash` kills the server under its call; it is destructive, so nothing replays it.
        crashed = await pool.call_tool("faults", "crash", {})
        assert (crashed.status, crashed.attempts) == ("unavailable", 1)
        assert await first.wait_exit() == 1
        await eventually(lambda: time.waiting(3600.0))  # the owner waits out its hour-long backoff
        [lost] = pool.statuses()

        second = await launch("faults", "streamable-http", "--port", str(port))
        time.advance(2.0)  # the restart took two seconds: more than the one-second wake interval
        echoed = await pool.call_tool("faults", "echo", {"text": "back"})
        pid = await pool.call_tool("faults", "pid", {})
        [after] = pool.statuses()

    assert (lost.state, lost.reconnects) == ("reconnecting", 0)
    assert (echoed.status, echoed.text, echoed.attempts) == ("ok", "back", 1)
    assert pid.text == str(second.pid)
    assert (after.state, after.reconnects) == ("connected", 1)
    assert [s.ended for s in time.sleeps if s.secs == 3600.0] == ["cut"]  # the backoff was cut short
    assert time.now == 2.0  # and the fake clock shows the call did not wait it out
    assert observer.events.count(("reconnect", "faults")) == 1


async def test_an_admin_check_of_a_server_that_is_back_wakes_the_reconnect(launch: Launcher) -> None:
    port = free_port()
    first = await launch("faults", "streamable-http", "--port", str(port))
    time = FakeTime()
    async with make_pool(backoff=HOUR, clock=time.clock, sleep=time.sleep, ready_timeout=5.0) as pool:
        await pool.reconcile([http_spec("faults", first.url)])
        await pool.list_tools()
        await pool.call_tool("faults", "crash", {})
        await first.wait_exit()
        await eventually(lambda: time.waiting(3600.0))
        second = await launch("faults", "streamable-http", "--port", str(port))
        time.advance(2.0)
        # What `GET /mcp/check` (and `smg mcp check` against a gateway) does: re-list every server.
        listed = await pool.list_tools(refresh=True)
        pid = await pool.call_tool("faults", "pid", {})
    assert "echo" in {tool.name for tool in listed["faults"]}
    assert pid.text == str(second.pid)
    assert [s.ended for s in time.sleeps if s.secs == 3600.0] == ["cut"]


async def test_a_dead_server_called_again_and_again_sees_at_most_one_early_attempt_per_interval() -> None:
    accepted = 0

    async def refuse(stream: anyio.abc.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        await stream.aclose()

    time = FakeTime()
    outcomes: list[str] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    url = f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}/mcp"
    async with listener, anyio.create_task_group() as serving:
        serving.start_soon(listener.serve, refuse)
        async with make_pool(backoff=HOUR, clock=time.clock, sleep=time.sleep, ready_timeout=0.05) as pool:
            await pool.reconcile([http_spec("dead", url)])
            await eventually(lambda: pool.statuses()[0].state == "failed" and time.waiting(3600.0))
            per_attempt = accepted  # the connections one attempt opens (the first one's)
            assert per_attempt >= 1
            for _ in range(30):  # three seconds of fake time, a call every tenth of a second
                time.advance(0.1)
                outcomes.append((await pool.call_tool("dead", "echo", {"text": "x"})).status)
        serving.cancel_scope.cancel()
    attempts = accepted / per_attempt
    assert set(outcomes) == {"unavailable"}
    # Three fake seconds at one early attempt per second: the first attempt plus at most three more,
    # and at least one (without the wake, the hour-long backoff allows none).
    assert 2 <= attempts <= 4, (accepted, per_attempt)
