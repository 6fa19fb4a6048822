"""API-key checks per plane."""

from __future__ import annotations

import pytest

from smg.api.auth import ADMIN, DATA, OPEN, KeyAuth, plane_of, presented_key
from smg.errors import AuthenticationError, PermissionDenied

DATA_KEY, ADMIN_KEY = "data-key", "admin-key"
REMOTE = "10.1.2.3"


def bearer(key: str) -> dict[bytes, bytes]:
    return {b"authorization": b"Bearer " + key.encode()}


def x_api_key(key: str) -> dict[bytes, bytes]:
    return {b"x-api-key": key.encode()}


NO_KEY: dict[bytes, bytes] = {}


@pytest.mark.parametrize(
    ("path", "plane"),
    [
        ("/v1/chat/completions", DATA),
        ("/v1/models", DATA),
        ("/workers", ADMIN),
        ("/workers/abc123", ADMIN),
        ("/mcp/servers", ADMIN),
        ("/health", OPEN),
        ("/readiness", OPEN),
        ("/docs", OPEN),
    ],
)
def test_each_path_belongs_to_its_plane(path: str, plane: str) -> None:
    assert plane_of(path) == plane


@pytest.mark.parametrize("headers", [NO_KEY, bearer("anything"), x_api_key("anything")])
def test_data_plane_is_open_without_configured_keys(headers: dict[bytes, bytes]) -> None:
    KeyAuth([], []).check(DATA, headers, REMOTE)


@pytest.mark.parametrize(
    "headers",
    [NO_KEY, bearer("wrong"), x_api_key("wrong"), bearer(ADMIN_KEY), {b"authorization": b"Basic ZGF0YQ=="}],
    ids=["none", "wrong-bearer", "wrong-x-api-key", "admin-key", "basic-scheme"],
)
def test_data_plane_with_keys_rejects_a_missing_or_wrong_key(headers: dict[bytes, bytes]) -> None:
    auth = KeyAuth([DATA_KEY], [ADMIN_KEY])

    with pytest.raises(AuthenticationError) as info:
        auth.check(DATA, headers, "127.0.0.1")

    assert info.value.status == 401
    assert info.value.code == "invalid_api_key"


@pytest.mark.parametrize("headers", [bearer(DATA_KEY), x_api_key(DATA_KEY), bearer("second")])
def test_data_plane_with_keys_accepts_any_configured_key_by_bearer_or_x_api_key(
    headers: dict[bytes, bytes],
) -> None:
    KeyAuth([DATA_KEY, "second"], []).check(DATA, headers, REMOTE)


def test_the_bearer_scheme_is_case_insensitive() -> None:
    KeyAuth([DATA_KEY], []).check(DATA, {b"authorization": b"bearer " + DATA_KEY.encode()}, REMOTE)


@pytest.mark.parametrize("headers", [bearer(ADMIN_KEY), x_api_key(ADMIN_KEY)])
def test_admin_plane_accepts_an_admin_key_from_any_host(headers: dict[bytes, bytes]) -> None:
    KeyAuth([DATA_KEY], [ADMIN_KEY]).check(ADMIN, headers, REMOTE)


def test_admin_plane_refuses_a_data_key_with_403() -> None:
    auth = KeyAuth([DATA_KEY], [ADMIN_KEY])

    with pytest.raises(PermissionDenied) as info:
        auth.check(ADMIN, bearer(DATA_KEY), REMOTE)

    assert info.value.status == 403
    assert info.value.code == "forbidden"


@pytest.mark.parametrize("headers", [NO_KEY, bearer("wrong")], ids=["none", "wrong"])
@pytest.mark.parametrize("host", ["127.0.0.1", REMOTE])
def test_admin_plane_with_admin_keys_rejects_a_missing_or_wrong_key_even_from_loopback(
    headers: dict[bytes, bytes], host: str
) -> None:
    auth = KeyAuth([DATA_KEY], [ADMIN_KEY])

    with pytest.raises(AuthenticationError):
        auth.check(ADMIN, headers, host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_admin_plane_without_admin_keys_answers_loopback_clients(host: str) -> None:
    KeyAuth([DATA_KEY], []).check(ADMIN, NO_KEY, host)


@pytest.mark.parametrize("host", [REMOTE, "192.168.0.1", "2001:db8::1", "localhost", "", None])
def test_admin_plane_without_admin_keys_refuses_other_hosts(host: str | None) -> None:
    auth = KeyAuth([], [])

    with pytest.raises(PermissionDenied) as info:
        auth.check(ADMIN, bearer(DATA_KEY), host)

    assert info.value.code == "forbidden"


def test_admin_plane_without_admin_keys_answers_ipv4_loopback_seen_through_a_dual_stack_socket() -> None:
    KeyAuth([], []).check(ADMIN, NO_KEY, "::ffff:127.0.0.1")


def test_admin_plane_without_admin_keys_refuses_an_ipv4_mapped_remote_host() -> None:
    with pytest.raises(PermissionDenied):
        KeyAuth([], []).check(ADMIN, NO_KEY, "::ffff:10.1.2.3")


@pytest.mark.parametrize("plane_key", [[], [DATA_KEY]])
def test_open_plane_needs_no_key_from_any_host(plane_key: list[str]) -> None:
    KeyAuth(plane_key, [ADMIN_KEY]).check(OPEN, NO_KEY, None)


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        (bearer("k"), b"k"),
        (x_api_key("k"), b"k"),
        ({b"authorization": b"Bearer   k  "}, b"k"),
        ({b"authorization": b"Bearer "}, None),
        ({b"authorization": b"Token k"}, None),
        (NO_KEY, None),
    ],
)
def test_presented_key_reads_bearer_or_x_api_key(headers: dict[bytes, bytes], key: bytes | None) -> None:
    assert presented_key(headers) == key
