"""The stored keys as the edge checks them: a snapshot in memory, by the digest of the secret.

`KeyRing.admit` is the whole per-request work for a stored key: one SHA-256, one dict lookup, the
expiry compared with the wall clock, and the key's ``rpm`` bucket. The snapshot is replaced whole by
`smg.keys.watch` when the store's version moves; nothing here touches the database.

Rates: a token bucket per key name holding at most ``rpm`` requests and refilled at ``rpm`` per
minute, in this process (a gateway's replicas each allow ``rpm``). With ``rpm_share`` N (an instance
of N serving processes) each process's bucket holds and refills ``ceil(rpm / N)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from smg.errors import AuthenticationError, KeyRateLimited
from smg.keys.record import KeyRecord
from smg.keys.scope import KeyScope
from smg.keys.secrets import digest


class KeyObserver(Protocol):
    """Telemetry seam: a request refused over its key's ``rpm`` (``key``: the key's name)."""

    def on_rate_limited(self, key: str) -> None: ...


class NullKeyObserver:
    def on_rate_limited(self, key: str) -> None:
        pass


@dataclass
class _Bucket:
    rpm: int
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """0 when a request may go now (one token taken), else the seconds until it may."""
        rate = self.rpm / 60.0
        self.tokens = min(float(self.rpm), self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


class KeyRing:
    """``stored``: whether the store holds any key at all (in any state); while it does not, the data
    plane's rule is the ``--api-key`` one (`smg.api.auth.KeyAuth`). ``wall`` gives Unix time (expiry),
    ``clock`` monotonic time (rates)."""

    def __init__(
        self,
        *,
        observer: KeyObserver | None = None,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        rpm_share: int = 1,
    ) -> None:
        self._observer = observer or NullKeyObserver()
        self._share = rpm_share
        self._wall = wall
        self._clock = clock
        self._by_digest: dict[bytes, KeyRecord] = {}
        self._buckets: dict[str, _Bucket] = {}
        self.stored = False

    def replace(self, records: Iterable[KeyRecord]) -> None:
        """Serve ``records`` from now on (a key's bucket is kept while its ``rpm`` stays the same)."""
        by_digest = {r.digest: r for r in records}
        buckets = {}
        for record in by_digest.values():
            bucket = self._buckets.get(record.name)
            if bucket is not None and bucket.rpm == self._rate(record.scope.rpm):
                buckets[record.name] = bucket
        self._by_digest, self._buckets = by_digest, buckets
        self.stored = bool(by_digest)

    def _rate(self, rpm: int | None) -> int | None:
        return rpm if rpm is None or self._share == 1 else math.ceil(rpm / self._share)

    def __len__(self) -> int:
        return len(self._by_digest)

    def knows(self, key: bytes) -> bool:
        """Whether ``key`` is a stored key (in any state)."""
        return digest(key) in self._by_digest

    def admit(self, key: bytes | None) -> KeyScope:
        """The scope of the stored key ``key``, its request counted against its ``rpm``. Raises
        AuthenticationError (no key, an unknown one, a revoked or an expired one) and KeyRateLimited."""
        record = self._by_digest.get(digest(key)) if key is not None else None
        if record is None:
            raise AuthenticationError("missing or invalid API key" if key is None else "invalid API key")
        state = record.state(self._wall())
        if state != "active":
            raise AuthenticationError(f"API key {record.name!r} is {state}")
        rpm = record.scope.rpm
        if rpm is not None:
            if self._share != 1:
                rpm = math.ceil(rpm / self._share)
            now = self._clock()
            bucket = self._buckets.get(record.name)
            if bucket is None:
                bucket = self._buckets[record.name] = _Bucket(rpm, float(rpm), now)
            wait = bucket.take(now)
            if wait > 0:
                self._observer.on_rate_limited(record.name)
                raise KeyRateLimited(
                    f"API key {record.name!r} is over its {rpm} requests per minute",
                    retry_after_secs=max(1, math.ceil(wait)),
                )
        return record.scope
