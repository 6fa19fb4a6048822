"""Login tokens of the operator console: stateless, signed, never the admin key itself.

A token is ``v1.<expiry>.<nonce>.<mac>``: ``expiry`` in unix seconds, ``nonce`` random, and ``mac`` the
HMAC-SHA256 of ``v1.<expiry>.<nonce>`` under a signing key derived from the admin key the console logged
in with. Every process and replica configured with the same admin keys verifies it without shared state;
removing or changing an admin key invalidates the tokens issued under it. Comparisons are constant-time
and look at every configured key (no early exit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence

COOKIE = "smg_console"
CONSOLE_HEADER = b"x-smg-console"
"""The request header (value ``1``) that must come with the cookie on the admin plane: a cross-site
form cannot send it, so the cookie alone never authorizes a change."""
TOKEN_TTL_SECS = 12 * 3600
_VERSION = "v1"
_LABEL = b"smg operator console session v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class ConsoleSessions:
    """Issues and verifies console tokens for ``admin_keys`` (none: nothing to log in to).

    ``clock`` gives unix seconds (a seam for tests); a token lives ``ttl_secs`` from its issue."""

    def __init__(
        self,
        admin_keys: Sequence[bytes],
        *,
        clock: Callable[[], float] = time.time,
        ttl_secs: int = TOKEN_TTL_SECS,
    ) -> None:
        self._keys = [(key, hmac.digest(key, _LABEL, hashlib.sha256)) for key in admin_keys]
        self._clock = clock
        self._ttl = ttl_secs

    def issue(self, key: bytes) -> str | None:
        """A fresh token when ``key`` is one of the admin keys, else None."""
        signing: bytes | None = None
        for admin, derived in self._keys:  # no early exit: time does not depend on which key matched
            if hmac.compare_digest(key, admin):
                signing = derived
        if signing is None:
            return None
        payload = f"{_VERSION}.{int(self._clock()) + self._ttl}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{_b64(hmac.digest(signing, payload.encode(), hashlib.sha256))}"

    def verify(self, token: str) -> bool:
        """True for an unexpired token signed under one of the admin keys."""
        payload, _, mac = token.rpartition(".")
        parts = payload.split(".")
        if len(parts) != 3 or parts[0] != _VERSION or not (parts[1].isascii() and parts[1].isdigit()):
            return False
        if not mac or int(parts[1]) <= self._clock():
            return False
        found = False
        expected = mac.encode("ascii", "replace")
        for _admin, derived in self._keys:
            computed = _b64(hmac.digest(derived, payload.encode(), hashlib.sha256)).encode()
            found |= hmac.compare_digest(computed, expected)
        return found

    def admits(self, headers: Mapping[bytes, bytes]) -> bool:
        """The request carries ``X-SMG-Console: 1`` and a valid `COOKIE`."""
        if headers.get(CONSOLE_HEADER) != b"1":
            return False
        token = cookie_value(headers.get(b"cookie"), COOKIE)
        return token is not None and self.verify(token)


def cookie_value(header: bytes | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header (the first one of that name), or None."""
    if not header:
        return None
    wanted = name.encode("ascii")
    for pair in header.split(b";"):
        key, sep, value = pair.strip().partition(b"=")
        if sep and key == wanted:
            return value.strip().decode("latin-1")
    return None


def set_cookie(token: str, *, secure: bool) -> str:
    """The ``Set-Cookie`` value of a login: a browser-session cookie (no Max-Age or Expires) that
    scripts cannot read and other sites never send."""
    return f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/" + ("; Secure" if secure else "")


def clear_cookie(*, secure: bool) -> str:
    """The ``Set-Cookie`` value of a logout."""
    return f"{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/" + ("; Secure" if secure else "")
