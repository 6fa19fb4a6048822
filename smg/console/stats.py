"""The overview of the last minutes (``GET /stats/recent``): a sampler that reads the gateway's metric
totals every few seconds and keeps, in a bounded ring, what changed over each interval.

It adds no work to a request: it reads the counters and the duration histogram the requests already
update (the routed-request families, so admin calls and probes are not counted), and estimates the
quantiles of an interval from the differences of the histogram's cumulative bucket counts, interpolating
linearly inside a bucket (as Prometheus's ``histogram_quantile`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("smg.console")
INTERVAL_SECS = 5.0
WINDOW_SECS = 3600
"""How far back the ring reaches."""


@dataclass(frozen=True)
class Totals:
    """Totals since start of the routed-request families at one moment. ``buckets``: the request
    duration histogram as (upper bound in seconds, cumulative count), ascending, ``inf`` last."""

    requests: float = 0.0
    errors: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    tool_calls: float = 0.0
    tool_errors: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile (0-1) of cumulative ``buckets`` (upper bound, count; ascending, ``inf`` last),
    None when they hold no observation. Inside a bucket the value is interpolated linearly from its lower
    bound (0 for the first); in the ``inf`` bucket it is the highest finite bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank and count > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _delta(now: float, before: float) -> int:
    # A series dropped since the last sample makes a total shrink: the interval counts nothing then.
    return max(0, round(now - before))


class RecentStats:
    """Every ``interval_secs`` (`run`), one point of what ``read`` (the current `Totals`) says changed
    since the last sample; the last `WINDOW_SECS` of points are kept. `sample` takes one at once (the
    first call only sets the baseline). ``clock`` gives unix seconds."""

    def __init__(
        self,
        read: Callable[[], Totals],
        *,
        interval_secs: float = INTERVAL_SECS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval_secs = interval_secs
        self._read = read
        self._clock = clock
        self._last: Totals | None = None
        self._points: deque[dict[str, Any]] = deque(maxlen=max(1, math.ceil(WINDOW_SECS / interval_secs)))

    def sample(self) -> dict[str, Any] | None:
        """Read the totals now; returns the new point (None for the baseline)."""
        now, last = self._read(), self._last
        self._last = now
        if last is None:
            return None
        old = dict(last.buckets)
        # A bucket missing from the earlier totals (no request had been routed) counted 0 then.
        buckets = [(upper, float(_delta(count, old.get(upper, 0.0)))) for upper, count in now.buckets]
        p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
        point = {
            "t": self._clock(),
            "requests": _delta(now.requests, last.requests),
            "errors": _delta(now.errors, last.errors),
            "p50_ms": None if p50 is None else p50 * 1000.0,
            "p99_ms": None if p99 is None else p99 * 1000.0,
            "prompt_tokens": _delta(now.prompt_tokens, last.prompt_tokens),
            "completion_tokens": _delta(now.completion_tokens, last.completion_tokens),
            "tool_calls": _delta(now.tool_calls, last.tool_calls),
            "tool_errors": _delta(now.tool_errors, last.tool_errors),
        }
        self._points.append(point)
        return point

    def recent(self, minutes: int) -> list[dict[str, Any]]:
        """The points of the last ``minutes``, oldest first (at most ``minutes * 60 / interval``)."""
        count = max(1, math.floor(minutes * 60 / self.interval_secs))
        points = list(self._points)
        return points[-count:]

    async def run(self) -> None:
        """Sample every ``interval_secs`` until cancelled; a failed sample is logged and skipped."""
        while True:
            await asyncio.sleep(self.interval_secs)
            try:
                self.sample()
            except Exception:
                log.exception("the stats sampler could not read the metrics")


@contextlib.asynccontextmanager
async def sampling(
    read: Callable[[], Totals], interval_secs: float = INTERVAL_SECS
) -> AsyncIterator[RecentStats]:
    """A `RecentStats` whose baseline is taken now and whose sampler task runs until the exit."""
    stats = RecentStats(read, interval_secs=interval_secs)
    stats.sample()
    task = asyncio.create_task(stats.run(), name="smg-stats-sampler")
    try:
        yield stats
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
