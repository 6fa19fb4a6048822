"""URLs and hosts as an operator configures them: worker URLs and worker entries, host patterns, and URLs
made safe to show.

Pure functions on strings, below every other package, so that the settings, the worker file and the MCP
registry check these values with one set of rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from urllib.parse import SplitResult, urlsplit, urlunsplit

_HIDDEN = "***"
_ENTRY_KEYS = ("url", "api_key")
HostNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo and every query value replaced by ``***`` (the user
    name and query keys stay, so an operator can still tell URLs apart). Never raises."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{_HIDDEN}@{hostport}" if ":" in userinfo else f"{_HIDDEN}@{hostport}"
        query = "&".join(
            f"{pair.split('=', 1)[0]}={_HIDDEN}" if pair else pair for pair in parts.query.split("&")
        )
        fragment = _HIDDEN if parts.fragment else ""
        return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, fragment))
    except ValueError:
        return _HIDDEN


def check_worker_url(url: str, *, key_hint: str) -> str:
    """``url`` without its trailing ``/``, when it is an ``http``/``https`` URL with a host and a valid
    port and without credentials, query or fragment (a worker URL is shown in logs, errors and metric
    labels, so it must carry no secret). Raises ValueError otherwise; the message shows the URL redacted
    and ends with ``key_hint`` (where an upstream key belongs instead) for a URL carrying credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"invalid URL {redact_url(url)!r}") from None
    try:
        parts.port  # noqa: B018  # urlsplit validates the port only when it is read
    except ValueError:
        raise ValueError(f"invalid port in {redact_url(url)!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {redact_url(url)!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(
            f"{parts.hostname}: a worker URL takes no credentials, query or fragment; {key_hint}"
        )
    return url.rstrip("/")


class WorkerEntryError(ValueError):
    """A worker entry is malformed. ``key`` names the entry's offending key, if one is to blame (so a
    caller can point at its line); the message never contains an API key."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def parse_worker_entry(item: object) -> tuple[str, str | None]:
    """(url, api_key) of one worker entry: a URL, or a mapping with ``url`` and an optional non-empty
    ``api_key`` (the upstream key for that worker). Raises WorkerEntryError."""
    if isinstance(item, str):
        return _entry_url(item), None
    if not isinstance(item, Mapping):
        raise WorkerEntryError("expected a URL or a mapping with url and api_key")
    unknown = sorted(str(k) for k in item if k not in _ENTRY_KEYS)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise WorkerEntryError(f"unknown key(s) {names} (an entry takes url and api_key)", key=unknown[0])
    api_key = item.get("api_key")
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise WorkerEntryError("api_key must be a non-empty string", key="api_key")
    raw = item.get("url")
    if not isinstance(raw, str):
        raise WorkerEntryError("url must be a string", key="url" if "url" in item else None)
    return _entry_url(raw), api_key


def _entry_url(raw: str) -> str:
    try:
        return check_worker_url(raw.strip(), key_hint="use api_key")
    except ValueError as exc:
        raise WorkerEntryError(str(exc), key="url") from None


def host_network(pattern: str) -> HostNetwork | None:
    """The IP network a host pattern names (an address is a one-host network), or None for a name."""
    try:
        return ipaddress.ip_network(pattern.strip("[]"), strict=False)
    except ValueError:
        return None


def _valid_name(pattern: str) -> bool:
    labels = pattern.split(".")
    return all(label and all(c.isalnum() or c in "-_" for c in label) for label in labels)


def parse_host_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Host patterns, normalized and without repeats: each of ``patterns`` may hold several, separated by
    commas or spaces. A pattern is ``*``, a host name, ``*.suffix``, an IP address or a CIDR network;
    names are lower-cased and lose a trailing dot. Raises ValueError naming a malformed pattern."""
    cleaned: list[str] = []
    for raw in patterns:
        for part in raw.replace(",", " ").split():
            pattern = part.strip().lower()
            pattern = pattern if pattern == "*" else pattern.rstrip(".")
            if pattern in ("", "*.") or (pattern == "*") != (part == "*"):
                raise ValueError(f"{part!r} is not a host name, *.suffix, IP address or CIDR")
            if pattern != "*" and host_network(pattern) is None:
                name = pattern[2:] if pattern.startswith("*.") else pattern
                if not _valid_name(name):
                    raise ValueError(f"{part!r} is not a host name, *.suffix, IP address or CIDR")
            cleaned.append(pattern)
    return tuple(dict.fromkeys(cleaned))
