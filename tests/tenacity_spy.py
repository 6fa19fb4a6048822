"""Which tenacity controllers ran, and what tenacity itself counted for them.

`record_tenacity_runs(monkeypatch)` wraps ``tenacity.AsyncRetrying.__call__`` for the rest of one test:
every controller that runs a function is recorded. A test can then tell that tenacity (not some other
loop) ran a retry policy, read tenacity's own statistics for the run (``attempt_number``, ``idle_for``),
and see that a request answered at the first attempt built no controller at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tenacity import AsyncRetrying


@dataclass(frozen=True)
class Run:
    """One controller run. Its statistics are tenacity's (kept per thread: tests and the gateway under
    test share the event loop's thread)."""

    controller: AsyncRetrying
    function: Any

    @property
    def attempts(self) -> int:
        """tenacity's attempt number: the attempts made, plus one when stopped while waiting to retry."""
        return int(self.controller.statistics["attempt_number"])

    @property
    def idle_for(self) -> float:
        """The total of the waits tenacity scheduled between attempts, in seconds."""
        return float(self.controller.statistics["idle_for"])


def record_tenacity_runs(monkeypatch: pytest.MonkeyPatch) -> list[Run]:
    """The list that each controller run is appended to, from now until the test ends."""
    runs: list[Run] = []
    original = AsyncRetrying.__call__

    async def recorded(self: AsyncRetrying, fn: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(Run(self, fn))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(AsyncRetrying, "__call__", recorded)
    return runs
