"""Key names, secrets and durations.

A secret is ``smg-`` and 43 URL-safe characters (32 random bytes): high entropy, so one SHA-256 of it is
what is stored and looked up (a slow password hash adds nothing against guessing 256 bits, and would
cost every request). The clear secret exists only in the answer that creates it.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from smg.errors import InvalidRequest

SECRET_PREFIX = "smg-"
KEY_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def new_secret() -> str:
    """A fresh key: ``smg-`` then 43 URL-safe characters."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def digest(secret: bytes) -> bytes:
    """What is stored and looked up for a presented key: its SHA-256."""
    return hashlib.sha256(secret).digest()


def check_name(name: object, *, param: str = "name") -> str:
    """``name`` if it is 1-64 of ``a-z A-Z 0-9 _ -``. Raises InvalidRequest."""
    if not isinstance(name, str) or not KEY_NAME_RE.match(name):
        raise InvalidRequest("a key name is 1-64 characters of a-z A-Z 0-9 _ -", param=param)
    return name


def parse_duration(text: object, *, param: str = "expires_in") -> float:
    """Seconds in ``text``: an integer number of seconds, or parts like ``90m``, ``12h``, ``30d``,
    ``1d12h`` (units s, m, h, d, w). Raises InvalidRequest for anything else, or zero."""
    if (isinstance(text, int) and not isinstance(text, bool)) or (isinstance(text, str) and text.isdigit()):
        seconds = float(text)
    elif isinstance(text, str) and text and _DURATION_PART.sub("", text) == "":
        seconds = float(sum(int(n) * _UNIT_SECS[u] for n, u in _DURATION_PART.findall(text)))
    else:
        raise InvalidRequest(
            "a duration is a number of seconds or parts like 90m, 12h, 30d, 1d12h", param=param
        )
    if seconds <= 0:
        raise InvalidRequest("a duration must be more than zero", param=param)
    return seconds
