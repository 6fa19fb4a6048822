"""Names under which MCP tools are offered to the model: ``<server>__<tool>`` (or ``<server>__<alias>``).

Providers accept function names matching ``^[a-zA-Z0-9_-]{1,64}$``. `exposed_tool_name` replaces every
other character with ``_`` and shortens a name longer than 64 characters to its first 55 characters,
``_`` and the first 8 hex digits of the SHA-256 of the original, unsanitised ``<server>__<tool>``.
Sanitising is lossy, so the mapping back is a table (`ToolNameMap`), never a parse; two pairs that
end up with the same name are refused when the map is built.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from smg.mcp.errors import ToolNameCollision

EXPOSED_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEPARATOR = "__"
MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_PREFIX = 55
_HASH_HEX = 8


def exposed_tool_name(server: str, tool: str) -> str:
    """The provider-safe name of ``tool`` (or its alias) of ``server``; deterministic, always valid."""
    original = f"{server}{SEPARATOR}{tool}"
    name = _UNSAFE.sub("_", original)
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()
        name = f"{name[:_PREFIX]}_{digest[:_HASH_HEX]}"
    return name


class ToolNameMap:
    """Exact two-way map between exposed names and (server, tool) pairs.

    ``tools`` maps each server to its tool names; ``aliases`` optionally maps a server to
    ``{tool: alias}`` (the alias replaces the tool name in the exposed name, the map still resolves to
    the real tool). Raises ToolNameCollision naming both pairs when two pairs get the same name.
    """

    def __init__(
        self,
        tools: Mapping[str, Iterable[str]],
        *,
        aliases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._by_exposed: dict[str, tuple[str, str]] = {}
        self._by_pair: dict[tuple[str, str], str] = {}
        for server, names in tools.items():
            server_aliases = (aliases or {}).get(server, {})
            for tool in names:
                self._add(server, tool, server_aliases.get(tool, tool))

    def _add(self, server: str, tool: str, shown: str) -> None:
        if (server, tool) in self._by_pair:
            return
        exposed = exposed_tool_name(server, shown)
        other = self._by_exposed.get(exposed)
        if other is not None:
            raise ToolNameCollision(exposed, first=other, second=(server, tool))
        self._by_exposed[exposed] = (server, tool)
        self._by_pair[(server, tool)] = exposed

    def resolve(self, exposed: str) -> tuple[str, str] | None:
        """The (server, tool) offered as ``exposed``, or None when the name is not an MCP tool."""
        return self._by_exposed.get(exposed)

    def exposed(self, server: str, tool: str) -> str:
        """The name under which ``tool`` of ``server`` is offered. Raises KeyError for an unknown pair."""
        return self._by_pair[(server, tool)]

    def servers(self) -> frozenset[str]:
        return frozenset(server for server, _ in self._by_pair)

    def items(self) -> list[tuple[str, tuple[str, str]]]:
        """(exposed name, (server, tool)) for every tool, in insertion order."""
        return list(self._by_exposed.items())

    def __contains__(self, exposed: object) -> bool:
        return exposed in self._by_exposed

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_exposed)

    def __len__(self) -> int:
        return len(self._by_exposed)


@dataclass(frozen=True)
class NameFinding:
    """One observation about a server's tool names. ``blocking`` findings make registration fail."""

    kind: str  # "server_exists" | "collision" | "renamed" | "shortened"
    message: str
    tool: str | None = None
    exposed: str | None = None

    @property
    def blocking(self) -> bool:
        return self.kind in ("server_exists", "collision")


def check_new_server(
    existing: ToolNameMap,
    server: str,
    tools: Iterable[str],
    *,
    aliases: Mapping[str, str] | None = None,
) -> list[NameFinding]:
    """Everything worth reporting about adding ``server`` with ``tools`` to ``existing`` (never raises).

    Blocking: the server is already in the map; a tool's name collides with an existing or sibling tool.
    Informational: a name had characters replaced (``renamed``) or was shortened (``shortened``).
    """
    findings: list[NameFinding] = []
    if server in existing.servers():
        findings.append(NameFinding("server_exists", f"MCP server {server!r} already has tools in the map"))
    # Against the other servers only: a server already present is reported once, not per tool.
    taken = {exposed: pair for exposed, pair in existing.items() if pair[0] != server}
    seen: set[str] = set()
    for tool in tools:
        if tool in seen:
            continue
        seen.add(tool)
        shown = (aliases or {}).get(tool, tool)
        exposed = exposed_tool_name(server, shown)
        original = f"{server}{SEPARATOR}{shown}"
        if len(original) > MAX_LENGTH or _UNSAFE.search(original):
            kind = "shortened" if len(original) > MAX_LENGTH else "renamed"
            findings.append(
                NameFinding(kind, f"tool {tool!r} is offered as {exposed!r}", tool=tool, exposed=exposed)
            )
        other = taken.get(exposed)
        if other is not None:
            error = ToolNameCollision(exposed, first=other, second=(server, tool))
            findings.append(NameFinding("collision", error.message, tool=tool, exposed=exposed))
            continue
        taken[exposed] = (server, tool)
    return findings
