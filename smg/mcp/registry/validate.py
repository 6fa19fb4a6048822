"""Registration checks for a new MCP server: reachable, lists tools, names fit, no collisions, name free.

`validate_server` never raises for what it finds: everything becomes a `Finding`, and ``blocking`` findings
make the `Validation` not ok. Callers that refuse a registration raise `Validation.error()`. The tools of
servers already registered are an input (``existing_tools``); `known_tools` probes them concurrently when
the caller has no cache of them (the offline CLI), turning unreachable ones into warnings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from smg.errors import Conflict, SmgError
from smg.mcp.errors import InvalidMcpConfig, ToolNameCollision
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import HostAllowList
from smg.mcp.registry.naming import NameFinding, ToolNameMap, check_new_server, exposed_tool_name
from smg.mcp.types import ToolInfo

Probe = Callable[[ServerSpec], Awaitable[list[ToolInfo]]]
"""Connects to a server and lists its tools; raises an `SmgError` when it cannot."""

_BLOCKING = frozenset({"unreachable", "no_tools", "server_exists", "collision", "host_not_allowed"})


@dataclass(frozen=True)
class Finding:
    """One observation about a registration.

    ``kind``: blocking ones are ``unreachable``, ``no_tools``, ``server_exists``, ``collision``,
    ``host_not_allowed``; informational ones ``reachable``, ``tool`` (offered under its plain prefixed
    name), ``renamed``, ``shortened``, ``unchecked`` (an existing server's tools are unknown, so
    collisions with it were not checked), ``existing_collision`` (two registered servers already
    collide), ``host_allowed`` and ``host_unchecked`` (see `host_finding`).
    """

    kind: str
    message: str
    tool: str | None = None
    exposed: str | None = None

    @property
    def blocking(self) -> bool:
        return self.kind in _BLOCKING

    def to_dict(self) -> dict[str, Any]:
        """The wire shape: ``{"kind", "message", "tool", "exposed", "blocking"}``."""
        return {
            "kind": self.kind,
            "message": self.message,
            "tool": self.tool,
            "exposed": self.exposed,
            "blocking": self.blocking,
        }

    @classmethod
    def from_name_finding(cls, finding: NameFinding) -> Finding:
        return cls(finding.kind, finding.message, tool=finding.tool, exposed=finding.exposed)


@dataclass(frozen=True)
class Validation:
    """What `validate_server` found; ``tools`` is what the server listed (empty when unreachable)."""

    server: str
    findings: list[Finding]
    tools: list[ToolInfo] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.blocking for f in self.findings)

    def error(self) -> McpRegistrationRefused | McpRegistrationConflict:
        """The error to raise when refusing the registration (call it only when not ``ok``).

        A taken name or a collision is `McpRegistrationConflict` (409); anything else (unreachable, no
        tools) is `McpRegistrationRefused` (400). The message lists every blocking finding; the error's
        ``findings`` are all of them, for callers that show the whole report.
        """
        if any(f.kind in ("server_exists", "collision") for f in self.findings):
            return McpRegistrationConflict(self.server, self.findings)
        return McpRegistrationRefused(self.server, self.findings)


def _refusal_message(server: str, findings: Sequence[Finding]) -> str:
    reasons = "; ".join(f.message for f in findings if f.blocking) or "no reason given"
    return f"MCP server {server!r} was not registered: {reasons}"


class McpRegistrationRefused(InvalidMcpConfig):
    """A new server failed validation (unreachable or lists no tools); ``findings`` is the whole report."""

    code = "mcp_registration_refused"

    def __init__(self, server: str, findings: Sequence[Finding]) -> None:
        super().__init__(_refusal_message(server, findings), server=server)
        self.findings = list(findings)


class McpRegistrationConflict(Conflict):
    """A new server's name is taken or one of its tools collides; ``findings`` is the whole report."""

    code = "mcp_registration_conflict"

    def __init__(self, server: str, findings: Sequence[Finding]) -> None:
        super().__init__(_refusal_message(server, findings), param="name")
        self.server = server
        self.findings = list(findings)


def host_finding(spec: ServerSpec, hosts: HostAllowList | None, source: str) -> Finding | None:
    """What the MCP host allow-list ``hosts`` (read from ``source``, e.g. ``env SMG_MCP_ALLOWED_HOSTS``;
    None: no list is known) says of ``spec``'s URL: ``host_allowed``, ``host_not_allowed`` (blocking) or
    ``host_unchecked``; None for a stdio server, which names no host."""
    if spec.url is None:
        return None
    host = urlsplit(spec.url).hostname or ""
    if hosts is None:
        return Finding(
            "host_unchecked",
            "no MCP host allow-list is known here (--mcp-allowed-hosts, SMG_MCP_ALLOWED_HOSTS or a --config "
            f"file): a gateway checks host {host!r} against its own when it loads the registry",
        )
    listed = f"{', '.join(hosts.patterns) or '*'}; from {source}"
    if hosts.allows_host(host):
        return Finding("host_allowed", f"host {host!r} is in the allowed MCP hosts ({listed})")
    return Finding("host_not_allowed", f"host {host!r} is not in the allowed MCP hosts ({listed})")


async def validate_server(
    spec: ServerSpec,
    existing: Sequence[ServerSpec],
    *,
    probe: Probe,
    existing_tools: Mapping[str, Sequence[str]],
) -> Validation:
    """Check that ``spec`` can join ``existing`` (the registered servers). Never raises for findings.

    ``probe`` lists the new server's tools (it owns its timeout; an `SmgError` or `OSError` from it is an
    ``unreachable`` finding). ``existing_tools`` maps registered servers to their tool names; a registered
    server missing from it gets an ``unchecked`` warning.
    """
    findings: list[Finding] = []
    names = {s.name for s in existing}
    if spec.name in names:
        findings.append(Finding("server_exists", f"an MCP server named {spec.name!r} is already registered"))
    try:
        tools = await probe(spec)
    except (SmgError, OSError) as exc:
        findings.append(Finding("unreachable", _unreachable(spec, exc)))
        return Validation(spec.name, findings)
    if not tools:
        findings.append(Finding("no_tools", f"MCP server {spec.name!r} lists no tools"))
        return Validation(spec.name, findings, tools)
    findings.append(
        Finding("reachable", f"MCP server {spec.name!r} is reachable and lists {len(tools)} tool(s)")
    )
    others = [s for s in existing if s.name != spec.name]
    for other in others:
        if other.name not in existing_tools:
            findings.append(
                Finding(
                    "unchecked", f"tools of MCP server {other.name!r} are unknown; not checked for collisions"
                )
            )
    known = {s.name: list(existing_tools[s.name]) for s in others if s.name in existing_tools}
    taken, warnings = _existing_map(known, {s.name: s.aliases for s in others})
    findings += warnings
    findings += _name_findings(spec, [t.name for t in tools], taken)
    return Validation(spec.name, findings, tools)


async def known_tools(
    specs: Sequence[ServerSpec], *, probe: Probe
) -> tuple[dict[str, list[str]], list[Finding]]:
    """Probe ``specs`` concurrently: (tool names per reachable server, an ``unchecked`` finding per other)."""

    async def one(spec: ServerSpec) -> list[str] | Finding:
        try:
            return [t.name for t in await probe(spec)]
        except (SmgError, OSError) as exc:
            return Finding("unchecked", f"{_unreachable(spec, exc)}; not checked for collisions")

    results = await asyncio.gather(*(one(s) for s in specs))
    tools = {s.name: r for s, r in zip(specs, results, strict=True) if not isinstance(r, Finding)}
    return tools, [r for r in results if isinstance(r, Finding)]


def _unreachable(spec: ServerSpec, exc: SmgError | OSError) -> str:
    if isinstance(exc, SmgError):
        return exc.message
    return f"MCP server {spec.name!r} is unreachable: {exc or type(exc).__name__}"


def _existing_map(
    tools: Mapping[str, list[str]], aliases: Mapping[str, Mapping[str, str]]
) -> tuple[ToolNameMap, list[Finding]]:
    """The name map of the registered servers; a server that collides with an earlier one is left out."""
    accepted: dict[str, list[str]] = {}
    warnings: list[Finding] = []
    for server, names in tools.items():
        trial = {**accepted, server: names}
        try:
            ToolNameMap(trial, aliases=aliases)
        except ToolNameCollision as exc:
            warnings.append(Finding("existing_collision", f"already registered: {exc.message}"))
            continue
        accepted = trial
    return ToolNameMap(accepted, aliases=aliases), warnings


def _name_findings(spec: ServerSpec, tools: list[str], taken: ToolNameMap) -> list[Finding]:
    """Per tool: its exposed name (``tool``, ``renamed`` or ``shortened``), plus any collision."""
    name_findings = [
        Finding.from_name_finding(f)
        for f in check_new_server(taken, spec.name, tools, aliases=spec.aliases)
        if f.kind != "server_exists"  # the registry's names are checked above, with or without tools
    ]
    described = {f.tool for f in name_findings if f.kind in ("renamed", "shortened")}
    findings: list[Finding] = []
    for tool in dict.fromkeys(tools):
        if tool not in described:
            exposed = exposed_tool_name(spec.name, spec.aliases.get(tool, tool))
            findings.append(
                Finding("tool", f"tool {tool!r} is offered as {exposed!r}", tool=tool, exposed=exposed)
            )
    return findings + name_findings
