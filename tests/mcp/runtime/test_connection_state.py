"""A connection's state is an explicit machine: every transition of the table works, any other raises and
changes nothing, a session is lent only while CONNECTED, and the status callers read follows the states
through a real reconnect (a stdio child killed under the pool)."""

from __future__ import annotations

import os
import signal
from collections import deque

import anyio
import pytest

from smg.mcp.runtime.hooks import Backoff
from smg.mcp.runtime.state import TRANSITIONS, ConnectionState, IllegalTransition, StateMachine, is_bug
from smg.mcp.types import ServerState
from tests.mcp.runtime._support import WAIT, RecordingObserver, eventually, make_pool, stdio_spec

S = ConnectionState
ALLOWED = [(current, wanted) for current, targets in TRANSITIONS.items() for wanted in targets]
REFUSED = [(current, wanted) for current in S for wanted in S if wanted not in TRANSITIONS[current]]
LENT = object()  # stands for a session


def _path_to(state: ConnectionState) -> list[ConnectionState]:
    """The shortest run of allowed transitions from CONNECTING to ``state``."""
    paths = {S.CONNECTING: [S.CONNECTING]}
    queue = deque([S.CONNECTING])
    while queue:
        current = queue.popleft()
        for wanted in sorted(TRANSITIONS[current], key=lambda s: s.name):
            if wanted not in paths:
                paths[wanted] = [*paths[current], wanted]
                queue.append(wanted)
    return paths[state]


def _step(machine: StateMachine[object], wanted: ConnectionState) -> None:
    if wanted is S.CONNECTED:
        machine.lend(LENT)
    else:
        machine.to(wanted)


def _machine_in(state: ConnectionState, labels: list[ServerState] | None = None) -> StateMachine[object]:
    machine: StateMachine[object] = StateMachine(labels.append if labels is not None else lambda _: None)
    for wanted in _path_to(state)[1:]:
        _step(machine, wanted)
    assert machine.state is state
    return machine


def test_every_state_is_reachable_from_connecting_and_closed_is_terminal() -> None:
    assert all(_path_to(state)[-1] is state for state in S)
    assert TRANSITIONS[S.CLOSED] == frozenset()
    assert all(S.CLOSED in TRANSITIONS[state] for state in S if state is not S.CLOSED)


@pytest.mark.parametrize(("current", "wanted"), ALLOWED, ids=lambda s: s.name)
def test_every_allowed_transition_moves_and_lends_only_into_connected(
    current: ConnectionState, wanted: ConnectionState
) -> None:
    machine = _machine_in(current)
    _step(machine, wanted)
    assert machine.state is wanted
    assert machine.lent is (LENT if wanted is S.CONNECTED else None)


@pytest.mark.parametrize(("current", "wanted"), REFUSED, ids=lambda s: s.name)
def test_a_transition_outside_the_table_raises_and_changes_nothing(
    current: ConnectionState, wanted: ConnectionState
) -> None:
    labels: list[ServerState] = []
    machine = _machine_in(current, labels)
    lent, seen = machine.lent, list(labels)
    with pytest.raises(IllegalTransition) as caught:
        _step(machine, wanted)
    assert (caught.value.current, caught.value.wanted) == (current, wanted)
    assert (machine.state, machine.lent, labels) == (current, lent, seen)


@pytest.mark.parametrize("state", [s for s in S if S.CONNECTED in TRANSITIONS[s]], ids=lambda s: s.name)
def test_connected_is_entered_only_by_lending_a_session(state: ConnectionState) -> None:
    machine = _machine_in(state)
    with pytest.raises(IllegalTransition):
        machine.to(S.CONNECTED)
    assert (machine.state, machine.lent) == (state, None)


def test_an_illegal_transition_is_told_apart_from_session_failures_also_inside_a_task_group() -> None:
    bug = IllegalTransition(S.CLOSED, S.CONNECTING)
    assert is_bug(bug) and is_bug(ExceptionGroup("task group", [ValueError("x"), bug]))
    assert not is_bug(ValueError("x")) and not is_bug(ExceptionGroup("task group", [OSError("x")]))


def test_observers_hear_each_change_of_the_public_label_once() -> None:
    labels: list[ServerState] = []
    machine: StateMachine[object] = StateMachine(labels.append)
    machine.to(S.FAILED)
    machine.lend(LENT)
    machine.to(S.RECONNECTING)
    machine.to(S.CLOSING)  # already reads "closed": it lends nothing any more
    machine.to(S.CLOSED)
    assert labels == ["failed", "connected", "reconnecting", "closed"]


async def test_waiters_wake_on_the_transition_they_wait_for() -> None:
    machine: StateMachine[object] = StateMachine(lambda _: None)
    borrowed: list[object | None] = []

    async def borrow() -> None:
        borrowed.append(await machine.borrow(WAIT))

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(borrow)
            await anyio.wait_all_tasks_blocked()
            machine.to(S.FAILED)  # not what the borrower waits for
            await anyio.wait_all_tasks_blocked()
            assert borrowed == []
            machine.lend(LENT)
        machine.to(S.CLOSING)
        assert await machine.borrow(WAIT) is None  # closing: no wait at all
        assert await machine.wait_for(S.CLOSING, S.CLOSED) is S.CLOSING
    assert borrowed == [LENT]


@pytest.mark.e2e
async def test_status_follows_the_states_through_the_restart_of_a_killed_stdio_child() -> None:
    backoff = Backoff(initial=123.0)  # a delay nothing else waits for
    backoff_started, resume = anyio.Event(), anyio.Event()

    async def sleep(secs: float) -> None:  # holds the reconnect backoff until the test has looked
        if secs != backoff.delay(1):
            await anyio.sleep(secs)
            return
        backoff_started.set()
        await resume.wait()

    observer = RecordingObserver()
    async with make_pool(sleep=sleep, backoff=backoff, observer=observer) as pool:
        await pool.reconcile([stdio_spec("calc")])
        await eventually(lambda: pool.statuses()[0].state == "connected")
        [before] = pool.statuses()
        assert before.pid is not None and before.reconnects == 0
        os.kill(before.pid, signal.SIGKILL)
        with anyio.fail_after(WAIT):
            await backoff_started.wait()
        [lost] = pool.statuses()
        resume.set()
        assert (await pool.call_tool("calc", "evaluate", {"expression": "2 + 3"})).text == "5"
        [after] = pool.statuses()

    assert (lost.state, lost.pid, lost.reconnects) == ("reconnecting", None, 0)
    assert lost.last_error == "the stdio server process exited"
    assert (after.state, after.reconnects, after.last_error) == ("connected", 1, None)
    assert after.pid is not None and after.pid != before.pid
    states = [event[2] for event in observer.events if event[0] == "state"]
    assert states == ["connected", "reconnecting", "connected", "closed"]
    assert ("stdio_restart", "calc") in observer.events
