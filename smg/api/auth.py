"""API keys: data-plane keys for /v1/*, admin keys for the control plane. ``--api-key`` and
``--admin-api-key`` values are compared in constant time; stored keys (`smg.keys`) are looked up by the
SHA-256 of the presented key."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from typing import NoReturn

from smg.console.session import ConsoleSessions
from smg.errors import AuthenticationError, PermissionDenied
from smg.keys.ring import KeyRing
from smg.keys.scope import KeyScope
from smg.keys.service import Keys

DATA, ADMIN, CONSOLE, OPEN = "data", "admin", "console", "open"
_ADMIN_PREFIXES = ("/workers", "/mcp", "/keys", "/loops", "/stats")
# The gateway's MCP endpoint (`smg.api.mcp_endpoint`): under /mcp, but for data keys.
_MCP_ENDPOINT = ("/mcp", "/mcp/")
_MCP_SCOPED = "/mcp/scoped/"


def plane_of(path: str) -> str:
    """Which plane a path belongs to: data (/v1/..., the MCP endpoint /mcp and /mcp/scoped/...), admin
    (/workers, the rest of /mcp, /keys, /loops, /stats), console (/ui, /ui/...) or open (probes, docs)."""
    if path.startswith("/v1/"):
        return DATA
    if path in _MCP_ENDPOINT or path.startswith(_MCP_SCOPED):
        return DATA
    if path.startswith(_ADMIN_PREFIXES):
        return ADMIN
    if path == "/ui" or path.startswith("/ui/"):
        return CONSOLE
    return OPEN


def _matches(key: bytes, keys: Sequence[bytes]) -> bool:
    found = False
    for candidate in keys:  # no early exit: time does not depend on which key matched
        found |= hmac.compare_digest(key, candidate)
    return found


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client seen through a dual-stack socket
    return ip.is_loopback


def presented_key(headers: Mapping[bytes, bytes]) -> bytes | None:
    """The key from ``Authorization: Bearer K`` or ``x-api-key: K``."""
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" and token.strip() else None
    return headers.get(b"x-api-key")


class KeyAuth:
    """Checks one request's key against its plane.

    Data plane: open when no ``--api-key`` is set and the ``keys`` ring holds no stored key (in any
    state: revoking the last key never opens it); else an ``--api-key`` value (unrestricted) or an
    active stored key (its scope) is required.
    ``keys``: the stored keys (none: only the flags' keys exist).
    Admin plane: one of ``--admin-api-key`` is required; a data key gets 403. A request without a key
    is admitted with a valid console cookie together with ``X-SMG-Console: 1`` (`console`). With no
    admin key configured the admin plane answers loopback clients only.
    Console plane (the console's shell and its login): open with an admin key configured (the shell
    holds no data; `login` checks the key), else loopback clients only, like the admin plane.
    """

    def __init__(
        self, api_keys: Sequence[str], admin_keys: Sequence[str], *, keys: Keys | None = None
    ) -> None:
        self._data = [k.encode() for k in api_keys]
        self._admin = [k.encode() for k in admin_keys]
        self.keys = keys  # the stored keys and their admin operations (`smg.api.keys_admin`)
        self._keys = keys.ring if keys is not None else KeyRing()
        self.console = ConsoleSessions(self._admin)  # the console's login tokens

    @property
    def admin_required(self) -> bool:
        """An admin key is configured (else the admin plane answers loopback clients only)."""
        return bool(self._admin)

    def login(self, key: bytes) -> str:
        """A console token for an admin ``key``. Raises AuthenticationError (401) for an unknown key,
        PermissionDenied (403) for a data-plane key."""
        token = self.console.issue(key)
        if token is not None:
            return token
        self._refuse_admin(key)

    def _refuse_admin(self, key: bytes | None) -> NoReturn:
        if key is not None and (_matches(key, self._data) or self._keys.knows(key)):
            raise PermissionDenied("a data-plane key cannot use the admin API")
        raise AuthenticationError("missing or invalid admin API key")

    def check(self, plane: str, headers: Mapping[bytes, bytes], client_host: str | None) -> KeyScope | None:
        """The scope of the stored key presented (None: unrestricted, or not the data plane). Raises
        AuthenticationError (401), PermissionDenied (403) and KeyRateLimited (429)."""
        if plane == OPEN:
            return None
        key = presented_key(headers)
        if plane == DATA:
            if self._data and key is not None and _matches(key, self._data):
                return None
            if self._keys.stored:
                return self._keys.admit(key)
            if self._data:
                raise AuthenticationError("missing or invalid API key" if key is None else "invalid API key")
            return None
        if not self._admin:
            if not _is_loopback(client_host):
                raise PermissionDenied(
                    "the admin API and the console answer loopback clients only unless --admin-api-key is set"
                )
            return None
        if plane == CONSOLE:
            return None
        if key is not None and _matches(key, self._admin):
            return None
        if key is None and self.console.admits(headers):
            return None
        self._refuse_admin(key)
