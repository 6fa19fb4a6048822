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
from urllib.parse import urlsplit

from smg.mcp.errors import McpHostNotAllowed
from smg.urls import host_network as _network
from smg.urls import parse_host_patterns
from smg.urls import redact_url as redact_url  # re-exported: where the MCP side has always found it

_HIDDEN = "***"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


class HostAllowList:
    """Host patterns (see the module docstring; parsed by `smg.urls.parse_host_patterns`). Raises
    ValueError for a malformed pattern."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = parse_host_patterns(patterns)
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
