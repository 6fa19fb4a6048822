"""Console login tokens (`smg.console.session`) and how `KeyAuth` takes them: signed under a key derived
from the admin key logged in with, expiring, refused when tampered with or signed under another key,
and accepted on the admin plane only with ``X-SMG-Console: 1``, never on the data plane."""

from __future__ import annotations

import pytest

from smg.api.auth import ADMIN, CONSOLE, DATA, OPEN, KeyAuth, plane_of
from smg.console.session import ConsoleSessions, cookie_value
from smg.errors import AuthenticationError, PermissionDenied

ADMIN_KEY, OTHER_ADMIN, DATA_KEY = b"admin-key-1", b"admin-key-2", b"data-key-1"
REMOTE = "10.1.2.3"


def _clock(at: float) -> list[float]:
    return [at]


def test_a_token_is_not_the_key_and_verifies_until_it_expires() -> None:
    now = _clock(1_000_000.0)
    sessions = ConsoleSessions([ADMIN_KEY], clock=lambda: now[0], ttl_secs=3600)
    token = sessions.issue(ADMIN_KEY)
    assert token is not None
    version, expiry, nonce, mac = token.split(".")
    assert version == "v1" and int(expiry) == 1_000_000 + 3600 and nonce and mac
    assert ADMIN_KEY.decode() not in token
    assert sessions.verify(token)
    now[0] += 3599
    assert sessions.verify(token)
    now[0] += 1
    assert not sessions.verify(token)


def test_two_logins_get_different_tokens() -> None:
    sessions = ConsoleSessions([ADMIN_KEY])
    assert sessions.issue(ADMIN_KEY) != sessions.issue(ADMIN_KEY)


def test_only_an_admin_key_gets_a_token() -> None:
    sessions = ConsoleSessions([ADMIN_KEY, OTHER_ADMIN])
    assert sessions.issue(b"admin-key") is None
    assert sessions.issue(b"") is None
    assert ConsoleSessions([]).issue(ADMIN_KEY) is None


def test_any_of_several_admin_keys_logs_in_and_removing_one_logs_out_only_its_consoles() -> None:
    both = ConsoleSessions([ADMIN_KEY, OTHER_ADMIN])
    first, second = both.issue(ADMIN_KEY), both.issue(OTHER_ADMIN)
    assert first is not None and second is not None
    assert both.verify(first) and both.verify(second)
    # another process (or replica) with the same keys verifies them without shared state
    assert ConsoleSessions([OTHER_ADMIN, ADMIN_KEY]).verify(first)
    only_second = ConsoleSessions([OTHER_ADMIN])
    assert not only_second.verify(first) and only_second.verify(second)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the mac
        lambda t: t.replace("v1.", "v2.", 1),
        lambda t: ".".join([*t.split(".")[:2], "other-nonce", t.split(".")[3]]),
        lambda t: ".".join([t.split(".")[0], str(int(t.split(".")[1]) + 10), *t.split(".")[2:]]),
        lambda t: t.rpartition(".")[0],
        lambda t: t + ".extra",
        lambda t: "",
        lambda t: "v1.-5.n.m",
        lambda t: (
            "v1.\uff19\uff19\uff19\uff19\uff19\uff19\uff19\uff19\uff19\uff19\uff19.n.m"
        ),  # fullwidth digits
        lambda t: t.rpartition(".")[0] + ".é",
    ],
)
def test_a_changed_token_is_refused(change: object) -> None:
    sessions = ConsoleSessions([ADMIN_KEY])
    token = sessions.issue(ADMIN_KEY)
    assert token is not None
    assert callable(change)
    assert not sessions.verify(change(token))


def test_a_token_of_another_admin_key_is_refused() -> None:
    foreign = ConsoleSessions([b"elsewhere"]).issue(b"elsewhere")
    assert foreign is not None
    assert not ConsoleSessions([ADMIN_KEY]).verify(foreign)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (b"smg_console=abc", "abc"),
        (b"a=1; smg_console=v1.2.3.4; b=2", "v1.2.3.4"),
        (b"smg_console_x=1; smg_console=t", "t"),
        (b"xsmg_console=1", None),
        (b"", None),
        (None, None),
        (b"smg_console", None),
    ],
)
def test_the_cookie_is_read_from_the_cookie_header(header: bytes | None, value: str | None) -> None:
    assert cookie_value(header, "smg_console") == value


@pytest.mark.parametrize(
    ("path", "plane"),
    [
        ("/ui", CONSOLE),
        ("/ui/", CONSOLE),
        ("/ui/js/app.js", CONSOLE),
        ("/ui/session", CONSOLE),
        ("/uix", OPEN),
        ("/stats/recent", ADMIN),
        ("/v1/ui/x", DATA),
        ("/v1/chat/completions", DATA),
    ],
)
def test_the_console_and_the_stats_have_their_planes(path: str, plane: str) -> None:
    assert plane_of(path) == plane


def _console_headers(
    auth: KeyAuth, *, header: bytes | None = b"1", key: bytes = ADMIN_KEY
) -> dict[bytes, bytes]:
    token = auth.console.issue(key)
    assert token is not None
    headers = {b"cookie": b"smg_console=" + token.encode()}
    if header is not None:
        headers[b"x-smg-console"] = header
    return headers


def test_the_admin_plane_admits_the_cookie_with_the_console_header_from_any_host() -> None:
    auth = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode()])
    assert auth.check(ADMIN, _console_headers(auth), REMOTE) is None


@pytest.mark.parametrize("header", [None, b"0", b"true", b""])
def test_the_cookie_without_the_console_header_is_401(header: bytes | None) -> None:
    auth = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode()])
    with pytest.raises(AuthenticationError):
        auth.check(ADMIN, _console_headers(auth, header=header), REMOTE)


def test_the_console_header_without_the_cookie_is_401() -> None:
    auth = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode()])
    with pytest.raises(AuthenticationError):
        auth.check(ADMIN, {b"x-smg-console": b"1"}, REMOTE)


def test_the_data_plane_never_takes_the_cookie() -> None:
    auth = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode()])
    with pytest.raises(AuthenticationError):
        auth.check(DATA, _console_headers(auth), "127.0.0.1")


def test_a_presented_key_is_judged_as_a_key_whatever_the_cookie() -> None:
    auth = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode()])
    headers = {**_console_headers(auth), b"authorization": b"Bearer " + DATA_KEY}
    with pytest.raises(PermissionDenied):
        auth.check(ADMIN, headers, REMOTE)
    headers[b"authorization"] = b"Bearer wrong"
    with pytest.raises(AuthenticationError):
        auth.check(ADMIN, headers, REMOTE)


def test_login_gives_a_token_for_an_admin_key_401_for_a_wrong_one_403_for_a_data_key() -> None:
    auth = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode(), OTHER_ADMIN.decode()])
    assert auth.console.verify(auth.login(ADMIN_KEY))
    assert auth.console.verify(auth.login(OTHER_ADMIN))
    with pytest.raises(AuthenticationError):
        auth.login(b"wrong")
    with pytest.raises(PermissionDenied):
        auth.login(DATA_KEY)


def test_the_console_plane_is_open_with_an_admin_key_and_loopback_only_without() -> None:
    keyed = KeyAuth([DATA_KEY.decode()], [ADMIN_KEY.decode()])
    assert keyed.check(CONSOLE, {}, REMOTE) is None
    assert keyed.admin_required
    local = KeyAuth([], [])
    assert not local.admin_required
    assert local.check(CONSOLE, {}, "127.0.0.1") is None
    assert local.check(CONSOLE, {}, "::1") is None
    with pytest.raises(PermissionDenied):
        local.check(CONSOLE, {}, REMOTE)
