"""Worker selection policies."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from smg.settings import POLICIES, BreakerSettings
from smg.workers.breaker import CircuitBreaker
from smg.workers.policies import (
    CacheAware,
    LeastLoad,
    PowerOfTwo,
    Random,
    RoundRobin,
    make_policy,
)
from smg.workers.worker import Worker


def make_workers(*loads: int) -> list[Worker]:
    return [
        Worker(url=f"http://127.0.0.1:{8000 + i}", breaker=CircuitBreaker(BreakerSettings()), in_flight=load)
        for i, load in enumerate(loads)
    ]


def keys(n: int, *, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


def test_round_robin_cycles_through_the_candidates_in_order() -> None:
    a, b, c = make_workers(0, 0, 0)
    policy = RoundRobin()

    picks = [policy.select([a, b, c], affinity_key=None) for _ in range(7)]

    assert picks == [a, b, c, a, b, c, a]


def test_least_load_picks_the_worker_with_fewest_requests_in_flight() -> None:
    workers = make_workers(3, 1, 2)
    policy = LeastLoad()

    picks = {policy.select(workers, affinity_key=b"k") for _ in range(10)}

    assert picks == {workers[1]}


def test_least_load_spreads_ties_across_idle_workers() -> None:
    workers = make_workers(0, 0, 5)
    policy = LeastLoad()

    picks = {policy.select(workers, affinity_key=None) for _ in range(4)}

    assert picks == {workers[0], workers[1]}


@pytest.mark.parametrize("seed", range(10))
def test_power_of_two_never_picks_the_busier_of_two_workers(seed: int) -> None:
    busy, idle = make_workers(5, 1)
    policy = PowerOfTwo(random.Random(seed))

    picks = {policy.select([busy, idle], affinity_key=None) for _ in range(50)}

    assert picks == {idle}


@pytest.mark.parametrize("seed", range(5))
def test_power_of_two_never_picks_the_most_loaded_worker(seed: int) -> None:
    workers = make_workers(0, 1, 2, 9)
    policy = PowerOfTwo(random.Random(seed))

    picks = Counter(policy.select(workers, affinity_key=None) for _ in range(200))

    assert workers[3] not in picks
    assert set(picks) == set(workers[:3])


def test_power_of_two_with_one_candidate_picks_it() -> None:
    (only,) = make_workers(4)

    assert PowerOfTwo(random.Random(0)).select([only], affinity_key=None) is only


def test_random_picks_only_among_candidates_and_reaches_all_of_them() -> None:
    workers = make_workers(0, 0, 0)
    policy = Random(random.Random(3))

    picks = {policy.select(workers, affinity_key=None) for _ in range(100)}

    assert picks == set(workers)


def test_cache_aware_maps_the_same_key_to_the_same_worker_in_any_order() -> None:
    workers = make_workers(0, 0, 0, 0)
    policy = CacheAware()

    for key in keys(50):
        first = policy.select(workers, affinity_key=key)
        assert policy.select(workers, affinity_key=key) is first
        assert policy.select(list(reversed(workers)), affinity_key=key) is first


def test_cache_aware_keeps_a_key_on_its_worker_when_another_worker_leaves() -> None:
    workers = make_workers(0, 0, 0, 0)
    policy = CacheAware()

    for key in keys(50):
        chosen = policy.select(workers, affinity_key=key)
        others = [w for w in workers if w is not chosen]
        remaining = [w for w in workers if w is not others[0]]
        assert policy.select(remaining, affinity_key=key) is chosen


def test_cache_aware_spreads_distinct_keys_across_workers() -> None:
    workers = make_workers(0, 0, 0)
    policy = CacheAware()

    picks = Counter(policy.select(workers, affinity_key=key) for key in keys(300))

    assert set(picks) == set(workers)


def test_cache_aware_spreads_distinct_keys_evenly_across_three_workers() -> None:
    workers = make_workers(0, 0, 0)
    policy = CacheAware()
    n = 3000

    picks = Counter(policy.select(workers, affinity_key=key) for key in keys(n))

    for worker in workers:
        assert 0.28 < picks[worker] / n < 0.39


def test_cache_aware_spreads_keys_across_workers_whose_long_urls_differ_only_in_the_port() -> None:
    host = "vllm-worker.inference-serving.svc.cluster.local.example.internal"
    workers = [
        Worker(url=f"http://{host}:{port}", breaker=CircuitBreaker(BreakerSettings()))
        for port in (8000, 8001)
    ]
    policy = CacheAware()

    picks = Counter(policy.select(workers, affinity_key=key) for key in keys(200))
    reordered = {policy.select(workers[::-1], affinity_key=key) for key in keys(200)}

    assert set(picks) == set(workers)
    assert reordered == set(workers)


def test_cache_aware_falls_back_to_least_loaded_when_the_affinity_worker_is_overloaded() -> None:
    workers = make_workers(0, 0, 0)
    policy = CacheAware()
    key = b"a shared system prompt"
    chosen = policy.select(workers, affinity_key=key)
    idle = next(w for w in workers if w is not chosen)
    for w in workers:
        w.in_flight = 100 if w is chosen else 20
    idle.in_flight = 1

    assert policy.select(workers, affinity_key=key) is idle


def test_cache_aware_keeps_affinity_when_the_worker_is_only_moderately_busier() -> None:
    workers = make_workers(0, 0, 0)
    policy = CacheAware()
    key = b"a shared system prompt"
    chosen = policy.select(workers, affinity_key=key)
    chosen.in_flight = 30

    assert policy.select(workers, affinity_key=key) is chosen


def test_cache_aware_without_a_key_picks_the_least_loaded() -> None:
    workers = make_workers(4, 0, 7)

    assert CacheAware().select(workers, affinity_key=None) is workers[1]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("round_robin", RoundRobin),
        ("random", Random),
        ("least_load", LeastLoad),
        ("power_of_two", PowerOfTwo),
        ("cache_aware", CacheAware),
    ],
)
def test_make_policy_builds_each_named_policy(name: str, cls: type) -> None:
    policy = make_policy(name)

    assert isinstance(policy, cls)
    assert policy.name == name


def test_every_policy_the_settings_accept_can_be_built() -> None:
    assert [make_policy(name).name for name in POLICIES] == list(POLICIES)


def test_make_policy_rejects_an_unknown_name() -> None:
    with pytest.raises(KeyError):
        make_policy("fastest")
