"""Worker selection policies. Each picks one worker among routable candidates."""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Sequence
from typing import Protocol

from smg.workers.worker import Worker


class SelectionPolicy(Protocol):
    name: str

    def select(self, candidates: Sequence[Worker], *, affinity_key: bytes | None) -> Worker:
        """Pick one of ``candidates`` (never empty). ``affinity_key`` is the request's routing prefix."""
        ...


class RoundRobin:
    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def select(self, candidates: Sequence[Worker], *, affinity_key: bytes | None) -> Worker:
        worker = candidates[self._next % len(candidates)]
        self._next += 1
        return worker


class Random:
    name = "random"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def select(self, candidates: Sequence[Worker], *, affinity_key: bytes | None) -> Worker:
        return candidates[self._rng.randrange(len(candidates))]


class LeastLoad:
    """Fewest requests in flight; ties go round-robin so idle pools still spread."""

    name = "least_load"

    def __init__(self) -> None:
        self._tiebreak = 0

    def select(self, candidates: Sequence[Worker], *, affinity_key: bytes | None) -> Worker:
        low = min(w.in_flight for w in candidates)
        tied = [w for w in candidates if w.in_flight == low]
        self._tiebreak += 1
        return tied[self._tiebreak % len(tied)]


class PowerOfTwo:
    """Two random candidates, the less loaded wins."""

    name = "power_of_two"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def select(self, candidates: Sequence[Worker], *, affinity_key: bytes | None) -> Worker:
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._rng.sample(list(candidates), 2)
        return a if a.in_flight <= b.in_flight else b


@functools.lru_cache(maxsize=4096)
def _url_key(url: str) -> bytes:
    return hashlib.blake2b(url.encode(), digest_size=32).digest()


def _score(key: bytes, url: str) -> int:
    # A keyed cryptographic hash over the whole URL: CRC-style hashes are affine, so their rendezvous
    # split is uneven, and a raw URL prefix as key would make long URLs that differ late collide.
    return int.from_bytes(hashlib.blake2b(key, digest_size=8, key=_url_key(url)).digest(), "big")


class CacheAware:
    """Prefix affinity: requests sharing a prompt prefix go to the same worker (rendezvous hashing),
    so the worker's prefix cache is reused; when that worker is much busier than the least loaded one
    (``balance_abs`` more in flight and ``balance_rel`` times as many) the least loaded wins instead."""

    name = "cache_aware"

    def __init__(self, *, balance_abs: int = 32, balance_rel: float = 1.5) -> None:
        self._balance_abs = balance_abs
        self._balance_rel = balance_rel
        self._fallback = LeastLoad()

    def select(self, candidates: Sequence[Worker], *, affinity_key: bytes | None) -> Worker:
        if len(candidates) == 1:  # nothing to weigh: no hashing, no load comparison
            return candidates[0]
        if affinity_key is None:
            return self._fallback.select(candidates, affinity_key=None)
        chosen = max(candidates, key=lambda w: _score(affinity_key, w.url))
        least = min(candidates, key=lambda w: w.in_flight)
        if (
            chosen.in_flight - least.in_flight > self._balance_abs
            and chosen.in_flight > least.in_flight * self._balance_rel
        ):
            return least
        return chosen


def make_policy(name: str) -> SelectionPolicy:
    """Policy by its ``--policy`` name. Raises KeyError for an unknown name (settings validate first)."""
    factories: dict[str, type[SelectionPolicy]] = {
        "round_robin": RoundRobin,
        "random": Random,
        "least_load": LeastLoad,
        "power_of_two": PowerOfTwo,
        "cache_aware": CacheAware,
    }
    return factories[name]()
