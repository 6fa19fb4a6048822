"""The retry policies of one MCP server's connection, defined and run by tenacity.

Both follow the worker layer's rule: the first attempt runs without any controller, and a tenacity
controller (built once per connection) takes over only when that attempt asks for another. The
controller is handed the first attempt's result as its attempt 1, so its attempt numbers, stop and wait
cover every attempt; each run uses a fresh copy, because tenacity keeps a run's state on the controller.

- `ReplayPolicy`: a tool call is sent a second time only when its first attempt says that is safe and
  may help (`ServerConnection._attempt`: the tool is annotated read-only or idempotent and the session
  died under the call, or the server refused the call with a 404 for an ended session, so it never ran).
  At most `TOOL_CALL_ATTEMPTS` attempts, no wait (the second attempt waits for the owner's new session),
  none once the connection is closing.
- `ReconnectPolicy`: the owner task opens sessions until one is established, waiting
  ``Backoff.delay(n)`` before the n-th; ``n`` starts again at 1 after every established session. A
  caller that finds no session may cut the wait short (`ReconnectPolicy.wake`), but the next attempt
  still starts no sooner than ``wake_interval`` seconds after the previous one ended: callers add at
  most one attempt per interval, however many there are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, wait_none
from tenacity.stop import stop_base

from smg.mcp.runtime.hooks import Sleep
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.types import ToolStatus

R = TypeVar("R")
Attempt = tuple[ToolStatus, str, bool]
"""One tool-call attempt: its status, its text, and whether another attempt is safe and may help."""
TOOL_CALL_ATTEMPTS = 2


class _StopWhen(stop_base):
    """tenacity stop strategy: stop once ``stopped()`` is true (the connection is closing)."""

    def __init__(self, stopped: Callable[[], bool]) -> None:
        self._stopped = stopped

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._stopped()


def _result(state: RetryCallState) -> Any:
    if state.outcome is None:  # tenacity calls its hooks only after an attempt
        raise RuntimeError("retry hook called before any attempt")
    return state.outcome.result()


def _reconnects(state: RetryCallState) -> bool:
    """Whether another session is opened: always after attempt 1 (the session that just ended), then
    until one gets established. An attempt that raised (cancellation) is never retried."""
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return False
    return state.attempt_number == 1 or not outcome.result()


async def _resume(controller: AsyncRetrying, first: R, attempt: Callable[[], Awaitable[R]]) -> tuple[R, int]:
    """Run a copy of ``controller`` whose attempt 1 is ``first`` and whose later attempts are
    ``attempt()``; returns the last result and how many attempts there were, ``first`` included."""
    number = 0

    async def next_attempt() -> R:
        nonlocal number
        number += 1
        return first if number == 1 else await attempt()

    result: R = await controller.copy()(next_attempt)
    return result, number


class ReplayPolicy:
    """When a tool call is sent again (see the module). ``stopped()`` true means no further attempt."""

    def __init__(self, *, sleep: Sleep, stopped: Callable[[], bool]) -> None:
        self._stopped = stopped
        self.controller = AsyncRetrying(
            sleep=sleep,
            stop=stop_after_attempt(TOOL_CALL_ATTEMPTS) | _StopWhen(stopped),
            wait=wait_none(),
            retry=retry_if_result(lambda end: bool(end[2])),
            retry_error_callback=_result,  # out of attempts: the last attempt's result stands
        )

    async def run(self, attempt: Callable[[], Awaitable[Attempt]]) -> tuple[Attempt, int]:
        """The last of the call's attempts, and how many there were. The first runs plain; the controller
        takes over only when it asks for another and the connection is not closing."""
        first = await attempt()
        if not first[2] or self._stopped():
            return first, 1
        return await _resume(self.controller, first, attempt)


class BackoffWait:
    """The owner's wait between connect attempts, which callers may cut short; the ``sleep`` tenacity
    calls. ``clock`` and ``sleep`` are the connection's (tests replace both)."""

    def __init__(self, *, sleep: Sleep, clock: Callable[[], float], interval: float) -> None:
        self._sleep = sleep
        self._clock = clock
        self._interval = interval
        self._began: float | None = None  # when the running wait began: when the last attempt ended
        self._until = 0.0
        self._scope: anyio.CancelScope | None = None
        self._pending = False  # woken while no wait ran: the next wait lasts at most the interval
        self._watchers: set[anyio.CancelScope] = set()

    async def __call__(self, secs: float) -> None:
        """Wait ``secs`` seconds, or less when woken. Its start means an attempt just ended without a
        session to serve, so the watchers of that attempt are told."""
        for scope in self._watchers:
            scope.cancel()
        self._watchers.clear()
        left = min(secs, self._interval) if self._pending else secs
        self._began = began = self._clock()
        self._until, self._pending = began + left, False
        try:
            while left > 0:
                with anyio.CancelScope() as self._scope:
                    await self._sleep(left)
                if not self._scope.cancelled_caught:
                    return
                left = self._until - self._clock()
        finally:
            self._began = self._scope = None

    def wake(self) -> float:
        """End the running wait at once, or ``interval`` seconds after the last attempt ended when that is
        later; while an attempt runs, shorten the next wait to the interval. Returns the seconds until the
        next attempt starts (0 while one runs)."""
        now = self._clock()
        if self._began is None:
            self._pending = True
            return 0.0
        start = max(now, self._began + self._interval)
        if start < self._until:
            self._until = start
            if self._scope is not None:
                self._scope.cancel()
        return max(0.0, self._until - now)

    def forget(self) -> None:
        """A session is lent: a wake that arrived before it does not shorten a later wait."""
        self._pending = False

    @contextmanager
    def until_attempt_fails(self) -> Iterator[None]:
        """Cancel the body when the next attempt ends without a session (the next wait begins)."""
        with anyio.CancelScope() as scope:
            self._watchers.add(scope)
            try:
                yield
            finally:
                self._watchers.discard(scope)


class ReconnectPolicy:
    """When the owner task opens the next session. A session attempt returns True when the session got
    established (it is served inside the attempt, so it returns once that session is lost).

    A run starts when a session ended (``established`` says whether it had been) and ends when an attempt
    establishes a session, or when ``stopped()``. The waits between attempts are a `BackoffWait`."""

    def __init__(self, options: ConnectionOptions, *, stopped: Callable[[], bool]) -> None:
        self.wait = BackoffWait(sleep=options.sleep, clock=options.clock, interval=options.wake_interval)
        backoff = options.backoff
        self.controller = AsyncRetrying(
            sleep=self.wait,
            stop=_StopWhen(stopped),
            wait=lambda state: backoff.delay(state.attempt_number),
            retry=_reconnects,
            retry_error_callback=_result,
        )

    async def resume(self, established: bool, session: Callable[[], Awaitable[bool]]) -> bool:
        """Reconnect after a session ended; True once a new session was established (and then lost),
        False when stopped before that."""
        result, _attempts = await _resume(self.controller, established, session)
        return result
