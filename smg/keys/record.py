"""One stored key: its name, the digest of its secret, its scope and its life (created, expires, revoked).

`KeyRecord.view` is the wire shape of the admin API and the CLI: it never holds the secret or its digest.
`new_record` validates what a caller asked for (the admin API's body, the CLI's options).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smg.errors import InvalidRequest
from smg.keys.scope import TOOL_SEPARATOR, KeyScope
from smg.keys.secrets import check_name, digest, new_secret, parse_duration

_SERVER_RE = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")  # the MCP server names of `smg mcp add`
_MAX_ITEMS = 1000
_FIELDS = {"name", "servers", "tools", "models", "rpm", "expires_in"}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Times are Unix seconds; ``expires_at`` and ``revoked_at`` None: never / not revoked."""

    name: str
    digest: bytes
    scope: KeyScope
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def state(self, now: float) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def view(self, now: float) -> dict[str, Any]:
        """What the admin API and the CLI show of the key: never its secret or its digest."""
        s = self.scope
        return {
            "name": self.name,
            "state": self.state(now),
            "servers": sorted(s.servers) if s.servers is not None else None,
            "tools": sorted(s.tools) if s.tools is not None else None,
            "models": sorted(s.models) if s.models is not None else None,
            "rpm": s.rpm,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
        }


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _names(value: object, param: str, check: re.Pattern[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > _MAX_ITEMS:
        raise InvalidRequest(f"'{param}' must be a non-empty array of names", param=param)
    for i, item in enumerate(value):
        bad = not isinstance(item, str) or not item or len(item) > 256
        if not bad and check is not None:
            bad = check.match(item) is None
        if not bad and param == "tools":
            server, sep, tool = item.partition(TOOL_SEPARATOR)
            bad = not sep or not tool or _SERVER_RE.match(server) is None
        if bad:
            raise InvalidRequest(_WHAT[param], param=f"{param}[{i}]")
    return frozenset(value)


_WHAT = {
    "servers": "a server name is 1-32 characters of a-z A-Z 0-9 _ -",
    "tools": "a tool is named SERVER__TOOL (the server's and the tool's own names)",
    "models": "a model name is a non-empty string of at most 256 characters",
}


def new_record(body: Mapping[str, Any], *, now: float) -> tuple[KeyRecord, str]:
    """A new key from ``body`` (``name``; optional ``servers``, ``tools`` (``SERVER__TOOL``), ``models``,
    ``rpm``, ``expires_in`` (seconds or ``30d``...)) and its clear secret. Raises InvalidRequest."""
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}", param=unknown[0])
    rpm = body.get("rpm")
    if rpm is not None and (not isinstance(rpm, int) or isinstance(rpm, bool) or not 1 <= rpm <= 10**9):
        raise InvalidRequest("'rpm' must be an integer from 1", param="rpm")
    expires = body.get("expires_in")
    scope = KeyScope(
        name=check_name(body.get("name")),
        servers=_names(body.get("servers"), "servers", _SERVER_RE),
        tools=_names(body.get("tools"), "tools", None),
        models=_names(body.get("models"), "models", None),
        rpm=rpm,
    )
    secret = new_secret()
    record = KeyRecord(
        name=scope.name or "",
        digest=digest(secret.encode()),
        scope=scope,
        created_at=now,
        expires_at=None if expires is None else now + parse_duration(expires),
    )
    return record, secret
