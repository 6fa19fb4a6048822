"""Which hosts MCP server URLs may name (``--mcp-allowed-hosts``), and URLs made safe to show.

A pattern is one of: ``*`` (any host), a host name (``localhost``, matched case-insensitively), a
suffix wildcard (``*.internal`` matches ``a.internal`` and ``a.b.internal``, not ``internal``), an IP
address (``127.0.0.1``, ``::1``) or a network in CIDR notation (``10.0.0.0/8``, ``fd00::/8``). An IP
pattern matches only a URL whose host is written as an IP literal: names are not resolved, so an
allow-list of addresses does not allow a name that happens to resolve to one of them. An empty
allow-list allows every host.

The list applies to the URL transports (``streamable-http``, ``sse``). A ``stdio`` server names no host;
only the admin plane and the files the operator controls can register one.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit, urlunsplit

from smg.mcp.errors import McpHostNotAllowed

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HIDDEN = "***"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def _network(pattern: str) -> _Network | None:
    try:
        return ipaddress.ip_network(pattern.strip("[]"), strict=False)
    except ValueError:
        return None


def _valid_name(pattern: str) -> bool:
    labels = pattern.split(".")
    return all(label and all(c.isalnum() or c in "-_" for c in label) for label in labels)


class HostAllowList:
    """Host patterns (see the module docstring). Raises ValueError for a malformed pattern."""

    def __init__(self, patterns: Iterable[str]) -> None:
        cleaned: list[str] = []
        for raw in patterns:
            for part in raw.replace(",", " ").split():
                pattern = part.strip().lower()
                pattern = pattern if pattern == "*" else pattern.rstrip(".")
                if pattern in ("", "*.") or (pattern == "*") != (part == "*"):
                    raise ValueError(f"{part!r} is not a host name, *.suffix, IP address or CIDR")
                if pattern != "*" and _network(pattern) is None:
                    name = pattern[2:] if pattern.startswith("*.") else pattern
                    if not _valid_name(name):
                        raise ValueError(f"{part!r} is not a host name, *.suffix, IP address or CIDR")
                cleaned.append(pattern)
        self.patterns: tuple[str, ...] = tuple(dict.fromkeys(cleaned))
        self._any = not self.patterns or "*" in self.patterns
        self._networks = [n for n in (_network(p) for p in self.patterns) if n is not None]
        self._names = {p for p in self.patterns if _network(p) is None and not p.startswith("*.")}
        self._suffixes = tuple(p[1:] for p in self.patterns if p.startswith("*."))

    @property
    def allows_any(self) -> bool:
        return self._any

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (a URL's host name or IP literal) matches a pattern."""
        if self._any:
            return True
        host = host.strip("[]").lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self._names or host.endswith(self._suffixes)
        return any(address in network for network in self._networks)

    def check(self, server: str, url: str | None) -> None:
        """Raise McpHostNotAllowed when ``url`` names a host outside the list (None: no URL, allowed)."""
        if url is None or self._any:
            return
        host = urlsplit(url).hostname or ""
        if not self.allows_host(host):
            raise McpHostNotAllowed(server, host)


ALLOW_ANY = HostAllowList(())


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


def scrub(text: str, url: str | None) -> str:
    """``text`` with every occurrence of ``url`` (and of its secret parts) replaced by the redacted
    URL: for failure descriptions that may quote the URL a server was reached at."""
    if not url:
        return text
    safe = redact_url(url)
    if safe == url:
        return text
    text = text.replace(url, safe)
    parts = urlsplit(url)
    secrets = [parts.password or "", parts.username or "", parts.fragment]
    secrets += [pair.split("=", 1)[1] for pair in parts.query.split("&") if "=" in pair]
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, _HIDDEN)
    return text


class RedactUrlsFilter(logging.Filter):
    """A handler filter: every URL in a record's message is passed through `redact_url`. Library loggers
    (the MCP SDK's, its HTTP client's) print the URLs they use, credentials and query strings included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg = _URL.sub(lambda m: redact_url(m.group(0)), message)
            record.args = None
        return True
