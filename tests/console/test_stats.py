"""The overview's sampler (`smg.console.stats`): quantiles from cumulative bucket differences, one point
per interval of what changed, the bounded ring, the window asked for, and the totals read from the
gateway's own metric families (`smg.observability.totals`)."""

from __future__ import annotations

import asyncio
import math

import pytest
from prometheus_client import CollectorRegistry

from smg.console.stats import WINDOW_SECS, RecentStats, Totals, quantile, sampling
from smg.observability.metrics import DURATION_BUCKETS, Metrics
from smg.observability.totals import totals_of, totals_reader

INF = math.inf


def test_quantiles_interpolate_inside_the_bucket_that_holds_the_rank() -> None:
    buckets = [(0.01, 0.0), (0.1, 10.0), (1.0, 20.0), (INF, 20.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)  # rank 10: the top of the second bucket
    assert quantile(0.25, buckets) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.99, buckets) == pytest.approx(0.1 + 0.9 * (19.8 - 10) / 10)


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert quantile(0.99, [(0.5, 1.0), (1.0, 1.0), (INF, 100.0)]) == 1.0


def test_no_observation_is_no_quantile() -> None:
    assert quantile(0.5, []) is None
    assert quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None


def test_the_first_bucket_interpolates_from_zero() -> None:
    assert quantile(0.5, [(0.2, 4.0), (INF, 4.0)]) == pytest.approx(0.1)


class Feed:
    """Totals handed to the sampler; ``read_twice`` is set once it was read twice (the point of the
    second read is in the ring before anyone waiting on it runs: sampling is synchronous)."""

    def __init__(self) -> None:
        self.now = Totals()
        self.reads = 0
        self.read_twice = asyncio.Event()

    def __call__(self) -> Totals:
        self.reads += 1
        if self.reads == 2:
            self.read_twice.set()
        return self.now


def test_each_point_is_the_difference_since_the_last_sample() -> None:
    feed, times = Feed(), iter([100.0, 105.0, 110.0])
    stats = RecentStats(feed, interval_secs=5, clock=lambda: next(times))
    assert stats.sample() is None  # the baseline
    feed.now = Totals(
        requests=4, errors=1, prompt_tokens=40, completion_tokens=8, tool_calls=3, tool_errors=1,
        buckets=((0.01, 0.0), (0.1, 4.0), (INF, 4.0)),
    )  # fmt: skip
    first = stats.sample()
    assert first == {
        "t": 100.0, "requests": 4, "errors": 1, "p50_ms": pytest.approx(55.0), "p99_ms": pytest.approx(99.1),
        "prompt_tokens": 40, "completion_tokens": 8, "tool_calls": 3, "tool_errors": 1,
    }  # fmt: skip
    feed.now = Totals(requests=6, errors=1, buckets=((0.01, 2.0), (0.1, 6.0), (INF, 6.0)))
    second = stats.sample()
    assert second is not None
    assert second["requests"] == 2 and second["errors"] == 0
    assert second["p50_ms"] == pytest.approx(5.0)  # both new requests fell in the first bucket
    assert second["prompt_tokens"] == 0  # a total that went down (a series dropped) counts nothing
    assert stats.recent(60) == [first, second]


def test_an_interval_without_a_request_has_no_quantiles() -> None:
    feed = Feed()
    stats = RecentStats(feed, interval_secs=5)
    stats.sample()
    point = stats.sample()
    assert point is not None
    assert point["requests"] == 0 and point["p50_ms"] is None and point["p99_ms"] is None


def test_the_ring_keeps_the_window_and_recent_gives_the_minutes_asked_for() -> None:
    feed = Feed()
    stats = RecentStats(feed, interval_secs=5, clock=lambda: 0.0)
    stats.sample()
    for n in range(WINDOW_SECS // 5 + 10):
        feed.now = Totals(requests=n + 1)
        stats.sample()
    assert len(stats.recent(60)) == WINDOW_SECS // 5
    assert len(stats.recent(1)) == 12
    assert [p["requests"] for p in stats.recent(1)] == [1] * 12


async def test_sampling_takes_the_baseline_at_once_and_samples_every_interval() -> None:
    feed = Feed()
    feed.now = Totals(requests=10)
    async with sampling(feed, 0.01) as stats:
        feed.now = Totals(requests=13)
        async with asyncio.timeout(10):
            await feed.read_twice.wait()
        assert stats.recent(60)[0]["requests"] == 3  # the 10 before the start are not counted


async def test_a_failing_read_is_logged_and_the_sampler_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls, sampled = 0, asyncio.Event()

    def flaky() -> Totals:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("registry unreadable")
        if calls == 3:
            sampled.set()
        return Totals(requests=calls)

    async with sampling(flaky, 0.01) as stats:
        async with asyncio.timeout(10):
            await sampled.wait()
        assert [p["requests"] for p in stats.recent(60)] == [2]  # 3 since the baseline of 1
    assert "could not read the metrics" in caplog.text


def test_totals_are_read_from_the_routed_request_families_only() -> None:
    metrics = Metrics(CollectorRegistry())
    labels = ("http", "m", "chat", "false")
    for seconds in (0.003, 0.02, 0.02):
        metrics.router_requests.labels(*labels).inc()
        metrics.router_duration.labels(*labels).observe(seconds)
    metrics.router_requests.labels("http", "m", "responses", "true").inc()
    metrics.router_duration.labels("http", "m", "responses", "true").observe(2.0)
    metrics.router_errors.labels(*labels, "upstream_500").inc()
    metrics.router_tokens.labels("m", "input").inc(11)
    metrics.router_tokens.labels("m", "output").inc(7)
    metrics.mcp_tool_calls.labels("s", "t", "success", "ok", "loop").inc(2)
    metrics.mcp_tool_calls.labels("s", "t", "error", "timeout", "admin").inc()
    metrics.http_requests.labels("GET", "/workers").inc(50)  # admin calls are not routed requests

    totals = totals_reader(metrics)()

    assert (totals.requests, totals.errors) == (4, 1)
    assert (totals.prompt_tokens, totals.completion_tokens) == (11, 7)
    assert (totals.tool_calls, totals.tool_errors) == (3, 1)
    bounds = [upper for upper, _ in totals.buckets]
    assert bounds == [*DURATION_BUCKETS, INF]
    counts = dict(totals.buckets)
    assert (counts[0.001], counts[0.005], counts[0.025], counts[2.5], counts[INF]) == (0, 1, 3, 4, 4)


def test_no_routed_request_yet_is_zero_totals() -> None:
    totals = totals_of(Metrics(CollectorRegistry()).registry.collect())
    assert totals == Totals()
