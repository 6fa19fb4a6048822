"""API keys: data-plane keys for /v1/*, admin keys for the control plane. Comparison is constant-time."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence

from smg.errors import AuthenticationError, PermissionDenied

DATA, ADMIN, OPEN = "data", "admin", "open"
_ADMIN_PREFIXES = ("/workers", "/mcp")


def plane_of(path: str) -> str:
    """Which plane a path belongs to: data (/v1/...), admin (/workers, /mcp) or open (probes, docs)."""
    if path.startswith("/v1/"):
        return DATA
    if path.startswith(_ADMIN_PREFIXES):
        return ADMIN
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

    Data plane: open when no ``--api-key`` is set, else one of them is required.
    Admin plane: one of ``--admin-api-key`` is required; a data key gets 403. With no admin key
    configured the admin plane answers loopback clients only.
    """

    def __init__(self, api_keys: Sequence[str], admin_keys: Sequence[str]) -> None:
        self._data = [k.encode() for k in api_keys]
        self._admin = [k.encode() for k in admin_keys]

    def check(self, plane: str, headers: Mapping[bytes, bytes], client_host: str | None) -> None:
        """Raises AuthenticationError (401) or PermissionDenied (403)."""
        if plane == OPEN:
            return
        key = presented_key(headers)
        if plane == DATA:
            if self._data and (key is None or not _matches(key, self._data)):
                raise AuthenticationError("missing or invalid API key" if key is None else "invalid API key")
            return
        if not self._admin:
            if not _is_loopback(client_host):
                raise PermissionDenied(
                    "the admin API answers loopback clients only unless --admin-api-key is set"
                )
            return
        if key is not None and _matches(key, self._admin):
            return
        if key is not None and _matches(key, self._data):
            raise PermissionDenied("a data-plane key cannot use the admin API")
        raise AuthenticationError("missing or invalid admin API key")
