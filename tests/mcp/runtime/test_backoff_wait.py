"""`BackoffWait`, the owner's wait between connect attempts: a wake ends it, but never sooner than
``interval`` after the previous attempt ended; a wake while an attempt runs shortens the next wait; a
caller watching an attempt is released when the next wait begins (that attempt failed). On a fake clock."""

from __future__ import annotations

import anyio

from smg.mcp.runtime.retrying import BackoffWait
from tests.mcp.runtime._support import WAIT, FakeTime


def _wait(time: FakeTime) -> BackoffWait:
    return BackoffWait(sleep=time.sleep, clock=time.clock, interval=1.0)


async def test_a_wake_ends_the_wait_one_interval_after_the_last_attempt_and_not_before() -> None:
    time = FakeTime()
    wait = _wait(time)
    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, 3600.0)
            await anyio.wait_all_tasks_blocked()
            time.advance(0.25)
            assert wait.wake() == 0.75  # the last attempt ended at 0: the next starts at 1
            await anyio.wait_all_tasks_blocked()
            time.advance(0.5)
            assert wait.wake() == 0.25  # a second wake changes nothing
            time.advance(0.25)
    assert [(s.secs, s.ended) for s in time.sleeps] == [(3600.0, "cut"), (0.75, "elapsed")]
    assert time.now == 1.0


async def test_a_wake_past_the_interval_ends_the_wait_at_once() -> None:
    time = FakeTime()
    wait = _wait(time)
    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, 3600.0)
            await anyio.wait_all_tasks_blocked()
            time.advance(5.0)
            assert wait.wake() == 0.0
    assert [(s.secs, s.ended) for s in time.sleeps] == [(3600.0, "cut")]


async def test_a_wake_while_no_wait_runs_shortens_the_next_one_until_a_session_is_lent() -> None:
    time = FakeTime()
    wait = _wait(time)
    assert wait.wake() == 0.0  # an attempt runs: it is the next attempt
    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, 3600.0)
            await anyio.wait_all_tasks_blocked()
            time.advance(1.0)
    assert [(s.secs, s.ended) for s in time.sleeps] == [(1.0, "elapsed")]
    wait.wake()
    wait.forget()  # a session was lent since: that wake is answered
    with anyio.move_on_after(0.2):  # not woken: the wait runs its whole length (it does not end here)
        await wait(3600.0)
    assert time.sleeps[-1].secs == 3600.0


async def test_a_watcher_of_an_attempt_is_released_when_the_next_wait_begins() -> None:
    time = FakeTime()
    wait = _wait(time)
    released = False
    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal released
                with wait.until_attempt_fails():
                    await anyio.sleep_forever()
                released = True

            tg.start_soon(watch)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(wait, 3600.0)  # the attempt failed: the owner waits again
            await anyio.wait_all_tasks_blocked()
            assert released
            tg.cancel_scope.cancel()
