"""`ServerSpec`: one registered MCP server, validated on construction, plus ``${VAR}`` secret handling.

Secrets: a header or env value may contain ``${ENV_VAR}`` references. The spec stores and serialises the
references as written; `resolve_secrets` substitutes them at connect time. `ServerSpec.redacted` (and
``repr``) keep references as they are and print ``***`` for any other value of a sensitive key
(``Authorization``, or a name containing ``key``, ``token`` or ``secret``, case-insensitive), and for
the password and the query values of the URL (`smg.mcp.hosts.redact_url`).
`ServerSpec.to_dict` keeps literal values, because it is what the registry stores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from smg.mcp.errors import InvalidMcpConfig, UnresolvedSecret
from smg.mcp.registry.hosts import redact_url

Transport = Literal["stdio", "streamable-http", "sse"]
Expose = Literal["always", "on-request"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "streamable-http", "sse")
EXPOSE_MODES: tuple[Expose, ...] = ("always", "on-request")
SERVER_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")
REDACTED = "***"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# An optional auth scheme word ("Bearer ") followed only by references: nothing secret is written out.
_REFERENCE_ONLY = re.compile(r"^(?:[A-Za-z]+ +)?(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})+$")
_ALIAS_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAPPING_FIELDS = ("env", "headers", "tool_timeouts", "aliases")


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, repr=False)
class ServerSpec:
    """A registered MCP server. Construction validates; an invalid spec raises `InvalidMcpConfig`."""

    name: str
    transport: Transport
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    expose: Expose = "on-request"
    tool_timeout_secs: float = 30.0
    tool_timeouts: Mapping[str, float] = field(default_factory=dict, hash=False)
    required: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _validate(self)
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "tool_timeout_secs", float(self.tool_timeout_secs))
        object.__setattr__(self, "tool_timeouts", {k: float(v) for k, v in self.tool_timeouts.items()})
        for name in _MAPPING_FIELDS:
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def timeout_for(self, tool: str) -> float:
        """Timeout in seconds of one call of ``tool`` (its override, else the server default)."""
        return self.tool_timeouts.get(tool, self.tool_timeout_secs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (references and literal values as written); `from_dict` reverses it."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["args"] = list(self.args)
        for name in _MAPPING_FIELDS:
            out[name] = dict(out[name])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerSpec:
        """Build a spec from `to_dict` output. Raises InvalidMcpConfig on unknown keys or bad values."""
        if not isinstance(data, Mapping):
            raise InvalidMcpConfig("an MCP server definition must be a mapping")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidMcpConfig(
                f"MCP server {data.get('name')!r}: unknown field(s) {', '.join(unknown)}",
                server=data.get("name") if isinstance(data.get("name"), str) else None,
                param=unknown[0],
            )
        values = dict(data)
        if isinstance(values.get("args"), list):
            values["args"] = tuple(values["args"])
        if "name" not in values or "transport" not in values:
            missing = "name" if "name" not in values else "transport"
            raise InvalidMcpConfig(f"MCP server definition lacks {missing!r}", param=missing)
        return cls(**values)

    def redacted(self) -> dict[str, Any]:
        """`to_dict` with sensitive literal header/env values, and the password and query values of the
        URL, replaced by ``***`` (safe to print or log)."""
        out = self.to_dict()
        if self.url is not None:
            out["url"] = redact_url(self.url)
        out["headers"] = redact_mapping(self.headers)
        out["env"] = redact_mapping(self.env)
        return out

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.redacted().items())
        return f"ServerSpec({shown})"


def is_sensitive_key(key: str) -> bool:
    """True for ``Authorization`` and any name containing key/token/secret (case-insensitive)."""
    low = key.lower()
    return low in ("authorization", "proxy-authorization") or any(
        word in low for word in ("key", "token", "secret", "password")
    )


def redact_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """Copy of ``mapping``: sensitive values other than pure ``${VAR}`` references become ``***``."""
    return {
        k: v if not is_sensitive_key(k) or _REFERENCE_ONLY.match(v) else REDACTED for k, v in mapping.items()
    }


def secret_references(mapping: Mapping[str, str]) -> list[str]:
    """Names of the variables that ``mapping``'s values reference, in order of first appearance."""
    seen: dict[str, None] = {}
    for value in mapping.values():
        for match in _REFERENCE.finditer(value):
            seen.setdefault(match.group(1), None)
    return list(seen)


def resolve_secrets(
    mapping: Mapping[str, str], environ: Mapping[str, str], *, server: str | None = None
) -> dict[str, str]:
    """Substitute every ``${VAR}`` in ``mapping``'s values from ``environ`` (call it at connect time).

    Text that is not a ``${NAME}`` reference is kept as is. Raises UnresolvedSecret naming the variable
    (and the key that references it, never a value) when a variable is not set.
    """

    def resolve(key: str, value: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable not in environ:
                raise UnresolvedSecret(variable, key=key, server=server)
            return environ[variable]

        return _REFERENCE.sub(substitute, value)

    return {k: resolve(k, v) for k, v in mapping.items()}


# --- validation ------------------------------------------------------------------------------------


def _is_str_mapping(value: object, value_type: type | tuple[type, ...]) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k and isinstance(v, value_type) and not isinstance(v, bool)
        for k, v in value.items()
    )


def _valid_timeout(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _http_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  # urlsplit validates the port only when it is read
    except ValueError:
        return "invalid port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _problem(spec: ServerSpec) -> tuple[str, str] | None:
    """The first (field, problem) of ``spec``, or None when it is valid."""
    if not isinstance(spec.name, str) or not SERVER_NAME_RE.match(spec.name):
        return "name", "must be 1-32 characters of a-z, A-Z, 0-9, '_' or '-'"
    if spec.transport not in TRANSPORTS:
        return "transport", f"must be one of {', '.join(TRANSPORTS)}"
    if spec.url is not None and not isinstance(spec.url, str):
        return "url", "must be a string"
    if spec.command is not None and not isinstance(spec.command, str):
        return "command", "must be a string"
    if spec.transport == "stdio":
        if not spec.command:
            return "command", "is required for the stdio transport"
        if spec.url is not None:
            return "url", "is not allowed for the stdio transport"
    else:
        if spec.command is not None:
            return "command", f"is not allowed for the {spec.transport} transport"
        if not spec.url:
            return "url", f"is required for the {spec.transport} transport"
        url_problem = _http_url_problem(spec.url)
        if url_problem:
            return "url", url_problem
    if not isinstance(spec.args, tuple | list) or not all(isinstance(a, str) for a in spec.args):
        return "args", "must be a list of strings"
    for name in ("env", "headers"):
        if not _is_str_mapping(getattr(spec, name), str):
            return name, "must map non-empty names to strings"
    if spec.expose not in EXPOSE_MODES:
        return "expose", f"must be one of {', '.join(EXPOSE_MODES)}"
    if not _valid_timeout(spec.tool_timeout_secs):
        return "tool_timeout_secs", "must be a number > 0"
    if not _is_str_mapping(spec.tool_timeouts, (int, float)) or not all(
        _valid_timeout(v) for v in spec.tool_timeouts.values()
    ):
        return "tool_timeouts", "must map tool names to numbers > 0"
    if not isinstance(spec.required, bool):
        return "required", "must be true or false"
    if not _is_str_mapping(spec.aliases, str) or not all(_ALIAS_RE.match(a) for a in spec.aliases.values()):
        return "aliases", "must map tool names to aliases of 1-64 characters of a-z, A-Z, 0-9, '_' or '-'"
    return None


def _validate(spec: ServerSpec) -> None:
    problem = _problem(spec)
    if problem is None:
        return
    param, text = problem
    name = spec.name if isinstance(spec.name, str) else None
    raise InvalidMcpConfig(f"MCP server {name!r}: {param}: {text}", server=name, param=param)
