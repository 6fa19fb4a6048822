"""Stored keys in the SQLite file and the edge's view of them: hashed at rest, found by digest, refused
when revoked or expired, counted against their rate."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from smg.errors import AuthenticationError, InvalidRequest, KeyExists, KeyNotFound, KeyRateLimited
from smg.keys.record import new_record
from smg.keys.ring import KeyRing
from smg.keys.secrets import SECRET_PREFIX, parse_duration
from smg.keys.store import SqliteKeyStore


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Refusals:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def on_rate_limited(self, key: str) -> None:
        self.keys.append(key)


def test_a_stored_key_is_its_digest_only(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "smg.db")
    record, secret = new_record({"name": "ci", "servers": ["clock"]}, now=1.0)
    store.add(record)
    assert secret.startswith(SECRET_PREFIX) and len(secret) > 40
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw and secret[len(SECRET_PREFIX) :].encode() not in raw
    assert store.get("ci") == record
    assert secret not in str(record.view(1.0)) and record.digest.hex() not in str(record.view(1.0))


def test_names_are_unique_also_after_revocation(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "smg.db")
    store.add(new_record({"name": "ci"}, now=1.0)[0])
    store.revoke("ci", at=2.0)
    with pytest.raises(KeyExists):
        store.add(new_record({"name": "ci"}, now=3.0)[0])
    with pytest.raises(KeyNotFound):
        store.revoke("nobody", at=2.0)
    assert store.revoke("ci", at=5.0).revoked_at == 2.0  # the first revocation stands


def test_the_version_moves_with_any_change_also_by_hand(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "smg.db")
    seen = [store.version()]
    store.add(new_record({"name": "ci"}, now=1.0)[0])
    seen.append(store.version())
    with sqlite3.connect(tmp_path / "smg.db") as db:
        db.execute("UPDATE api_keys SET revoked_at = 9 WHERE name = 'ci'")
    seen.append(store.version())
    assert len(set(seen)) == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "b@d"}, "name"),
        ({"name": "k", "servers": []}, "servers"),
        ({"name": "k", "servers": ["a b"]}, "servers[0]"),
        ({"name": "k", "tools": ["clock_now"]}, "tools[0]"),
        ({"name": "k", "models": [""]}, "models[0]"),
        ({"name": "k", "rpm": 0}, "rpm"),
        ({"name": "k", "expires_in": "soon"}, "expires_in"),
        ({"name": "k", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_key_request_names_its_parameter(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        new_record(body, now=1.0)
    assert raised.value.param == param


def test_durations() -> None:
    assert parse_duration("1d12h") == 129600 and parse_duration(90) == 90 and parse_duration("45") == 45


def test_the_ring_admits_by_digest_and_refuses_revoked_and_expired_keys() -> None:
    wall = Clock()
    ring = KeyRing(wall=wall)
    active, a = new_record({"name": "a", "models": ["m"]}, now=wall.now)
    expiring, b = new_record({"name": "b", "expires_in": 60}, now=wall.now)
    revoked, c = new_record({"name": "c"}, now=wall.now)
    ring.replace([active, expiring, dataclasses.replace(revoked, revoked_at=wall.now)])
    assert ring.stored and ring.admit(a.encode()).models == frozenset({"m"})
    assert ring.admit(b.encode()).name == "b"
    for key in (c.encode(), b"smg-unknown", None):
        with pytest.raises(AuthenticationError):
            ring.admit(key)
    wall.now += 60
    with pytest.raises(AuthenticationError, match="expired"):
        ring.admit(b.encode())


def test_a_key_over_its_rpm_waits_for_its_bucket() -> None:
    clock, refusals = Clock(), Refusals()
    ring = KeyRing(observer=refusals, clock=clock)
    record, secret = new_record({"name": "slow", "rpm": 2}, now=1.0)
    ring.replace([record])
    ring.admit(secret.encode())
    ring.admit(secret.encode())
    with pytest.raises(KeyRateLimited) as raised:
        ring.admit(secret.encode())
    assert raised.value.headers() == {"Retry-After": "30"} and refusals.keys == ["slow"]
    clock.now += 30
    ring.admit(secret.encode())
    ring.replace([record])  # a reload keeps the bucket of an unchanged rate
    with pytest.raises(KeyRateLimited):
        ring.admit(secret.encode())
