"""The edge's key check with stored keys: when the data plane is open, what a flag key and a stored key
get, and stored keys on the admin plane."""

from __future__ import annotations

import dataclasses

import pytest

from smg.api.auth import ADMIN, DATA, KeyAuth
from smg.errors import AuthenticationError, PermissionDenied
from smg.keys.record import KeyRecord, new_record
from smg.keys.ring import KeyRing
from smg.keys.service import Keys


class _Store:
    """`KeyStore` in memory: the ring is all the edge reads."""

    def __init__(self, records: list[KeyRecord]) -> None:
        self.records = records

    def list(self) -> list[KeyRecord]:
        return self.records

    def get(self, name: str) -> KeyRecord:
        return next(r for r in self.records if r.name == name)

    def add(self, record: KeyRecord) -> None:
        self.records.append(record)

    def revoke(self, name: str, *, at: float) -> KeyRecord:
        return self.get(name)

    def version(self) -> int:
        return len(self.records)


def _auth(
    records: list[KeyRecord], *, api_keys: tuple[str, ...] = (), admin: tuple[str, ...] = ()
) -> KeyAuth:
    keys = Keys(_Store(records), KeyRing())
    keys.load()
    return KeyAuth(api_keys, admin, keys=keys)


def _bearer(key: str) -> dict[bytes, bytes]:
    return {b"authorization": f"Bearer {key}".encode()}


def test_without_flag_keys_or_stored_keys_the_data_plane_is_open() -> None:
    assert _auth([]).check(DATA, {}, "10.0.0.1") is None


def test_a_stored_key_closes_the_data_plane_even_when_every_key_is_revoked() -> None:
    record, secret = new_record({"name": "gone"}, now=1.0)
    auth = _auth([dataclasses.replace(record, revoked_at=2.0)])
    for headers in ({}, _bearer(secret), _bearer("anything")):
        with pytest.raises(AuthenticationError):
            auth.check(DATA, headers, "127.0.0.1")


def test_a_flag_key_is_unrestricted_and_a_stored_key_brings_its_scope() -> None:
    record, secret = new_record({"name": "scoped", "servers": ["clock"]}, now=1.0)
    auth = _auth([record], api_keys=("flag",))
    assert auth.check(DATA, _bearer("flag"), None) is None
    found = auth.check(DATA, {b"x-api-key": secret.encode()}, None)
    assert found is not None and found.name == "scoped" and found.servers == frozenset({"clock"})
    with pytest.raises(AuthenticationError):
        auth.check(DATA, _bearer("neither"), None)


def test_a_stored_key_on_the_admin_plane_is_forbidden() -> None:
    record, secret = new_record({"name": "data"}, now=1.0)
    auth = _auth([record], admin=("admin",))
    assert auth.check(ADMIN, _bearer("admin"), None) is None
    with pytest.raises(PermissionDenied):
        auth.check(ADMIN, _bearer(secret), None)
    with pytest.raises(AuthenticationError):
        auth.check(ADMIN, _bearer("wrong"), None)
