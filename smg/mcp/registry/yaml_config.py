"""Load SMG's ``--mcp-config-path`` YAML into `ServerSpec` objects.

Shape (SMG's, plus three optional smg fields marked *)::

    servers:
      - name: clock
        protocol: stdio | sse | streamable          # streamable -> transport "streamable-http"
        url: http://127.0.0.1:9000/mcp               # sse / streamable
        command: python                              # stdio
        args: [-m, mcp_servers.clock]
        envs: {TZ: UTC}
        headers: {X-Api-Key: "${CLOCK_KEY}"}
        token: "${CLOCK_TOKEN}"                      # -> header Authorization: Bearer ${CLOCK_TOKEN}
        required: false
        expose: on-request                           # * always | on-request
        tool_timeout_secs: 30                        # *
        tools:
          now: {alias: current_time, timeout_secs: 5}  # timeout_secs is *

SMG's other top-level sections (``proxy``, ``pool``, ``inventory``, ``warmup``, ``policy``) and its
per-server ``proxy`` are accepted and ignored. Any other key, at the top, in a server or in a tool, is an
error naming the file, the line and the key, so a typo or another tool's format (LiteLLM's
``mcp_servers:`` mapping, say) is refused instead of being read as fewer servers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from smg.mcp.errors import InvalidMcpConfig
from smg.mcp.registry.config import ServerSpec, Transport
from smg.yaml_lines import YamlSyntaxError, key_line, load_yaml

_PROTOCOLS: dict[str, Transport] = {
    "stdio": "stdio",
    "sse": "sse",
    "streamable": "streamable-http",
    "streamable-http": "streamable-http",
}
_SERVER_KEYS = frozenset(
    {"name", "protocol", "url", "command", "args", "envs", "headers", "token", "required", "tools"}
    | {"expose", "tool_timeout_secs", "proxy"}
)
_TOOL_KEYS = frozenset({"alias", "timeout_secs"})
_IGNORED_SECTIONS = ("proxy", "pool", "inventory", "warmup", "policy")
_TOP_KEYS = frozenset({"servers", *_IGNORED_SECTIONS})
_SHAPE = "expected 'servers:' followed by a list of {name, protocol, url or command, ...}"


def load_mcp_config(path: str | os.PathLike[str]) -> list[ServerSpec]:
    """Read and validate the YAML file at ``path``. Raises InvalidMcpConfig naming the server and field."""
    return parse_mcp_config(_read(path), source=os.fspath(path))


def _read(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise InvalidMcpConfig(f"{os.fspath(path)}: cannot read MCP config ({exc.strerror})") from None


def parse_mcp_config(text: str, *, source: str = "<mcp config>") -> list[ServerSpec]:
    """Parse YAML ``text`` in SMG's shape. Raises InvalidMcpConfig naming ``servers[i]`` and the field."""
    try:
        document = load_yaml(text)
    except YamlSyntaxError as exc:
        where = f" at line {exc.line}" if exc.line is not None else ""
        raise InvalidMcpConfig(f"{source}: not valid YAML{where}") from None
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise InvalidMcpConfig(f"{source}: the top level must be a mapping with a 'servers' list")
    unknown = _unknown(document, _TOP_KEYS)
    if unknown:
        at = _at(source, text, [unknown[0]])
        raise InvalidMcpConfig(f"{at}unknown top-level {_keys(unknown)}; {_SHAPE}", param=unknown[0])
    return _servers(document, "servers", source=source, text=text)


def load_server_list(path: str | os.PathLike[str], *, key: str) -> list[ServerSpec]:
    """The servers listed under the top-level ``key`` of the YAML file at ``path``, each in the shape of
    a ``servers`` entry above. The file's other keys belong to another reader (smg's config file keeps
    its MCP servers under ``mcp_servers``) and are not looked at. Raises InvalidMcpConfig naming the
    file, its line, ``KEY[i]`` and the field."""
    source = os.fspath(path)
    text = _read(path)
    try:
        document = load_yaml(text)
    except YamlSyntaxError:
        raise InvalidMcpConfig(f"{source}: not valid YAML") from None
    if not isinstance(document, Mapping):
        return []
    return _servers(document, key, source=source, text=text)


def static_servers(config_path: str | None, servers_file: str | None, *, key: str) -> list[ServerSpec]:
    """The servers served from files: those of the MCP YAML at ``config_path`` and those under ``key``
    in ``servers_file`` (None: none). Raises InvalidMcpConfig, also for a name both files define."""
    specs = load_mcp_config(config_path) if config_path else []
    if servers_file:
        names = {spec.name for spec in specs}
        for spec in load_server_list(servers_file, key=key):
            if spec.name in names:
                raise InvalidMcpConfig(
                    f"{servers_file}: {key}: {spec.name!r} is also defined in {config_path}",
                    server=spec.name,
                    param="name",
                )
            specs.append(spec)
    return specs


def _servers(document: Mapping[str, Any], key: str, *, source: str, text: str) -> list[ServerSpec]:
    servers = document.get(key, [])
    if servers is None:
        return []
    if not isinstance(servers, list):
        raise InvalidMcpConfig(f"{source}: {key}: must be a list", param=key)
    specs: list[ServerSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(servers):
        spec = _server(entry, source=source, index=index, text=text, key=key)
        if spec.name in seen:
            raise InvalidMcpConfig(
                f"{source}: {key}[{index}]: name: {spec.name!r} is defined twice",
                server=spec.name,
                param="name",
            )
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _unknown(mapping: Mapping[Any, Any], known: frozenset[str]) -> list[str]:
    return sorted(str(k) for k in mapping if k not in known)


def _keys(names: list[str]) -> str:
    return ("key " if len(names) == 1 else "keys ") + ", ".join(repr(n) for n in names)


def _at(source: str, text: str, path: list[str | int]) -> str:
    """``"FILE:LINE: "`` of the key at ``path`` (``"FILE: "`` when its line is unknown)."""
    line = key_line(text, path)
    return f"{source}:{line}: " if line is not None else f"{source}: "


def _server(entry: object, *, source: str, index: int, text: str, key: str) -> ServerSpec:
    label = f"{key}[{index}]"
    if not isinstance(entry, Mapping):
        raise InvalidMcpConfig(f"{source}: {label}: must be a mapping")
    name = entry.get("name")
    label = f"{label} ({name})" if isinstance(name, str) else label
    where = f"{source}: {label}"

    def located(*path: str) -> str:  # "FILE:LINE: servers[i] (name)" of the key at ``path``
        return _at(source, text, [key, index, *path]) + label

    unknown = _unknown(entry, _SERVER_KEYS)
    if unknown:
        raise InvalidMcpConfig(f"{located(unknown[0])}: unknown {_keys(unknown)}", param=unknown[0])
    protocol = entry.get("protocol")
    if not isinstance(protocol, str) or protocol not in _PROTOCOLS:
        raise InvalidMcpConfig(f"{where}: protocol: must be one of stdio, sse, streamable", param="protocol")
    headers = _mapping(entry, "headers", where)
    token = entry.get("token")
    if token is not None:
        if not isinstance(token, str) or not token:
            raise InvalidMcpConfig(f"{where}: token: must be a non-empty string", param="token")
        if any(k.lower() == "authorization" for k in headers):
            raise InvalidMcpConfig(f"{where}: token: conflicts with an Authorization header", param="token")
        headers["Authorization"] = f"Bearer {token}"
    aliases, timeouts = _tools(entry.get("tools"), where, located)
    args = entry.get("args", [])
    values: dict[str, Any] = {
        "name": name,
        "transport": _PROTOCOLS[protocol],
        "url": entry.get("url"),
        "command": entry.get("command"),
        "args": tuple(args) if isinstance(args, list) else args,
        "env": _mapping(entry, "envs", where),
        "headers": headers,
        "required": entry.get("required", False),
        "aliases": aliases,
        "tool_timeouts": timeouts,
    }
    for key in ("expose", "tool_timeout_secs"):
        if key in entry:
            values[key] = entry[key]
    try:
        return ServerSpec(**values)
    except InvalidMcpConfig as exc:
        detail = exc.message.removeprefix(f"MCP server {exc.server!r}: ")
        raise InvalidMcpConfig(f"{where}: {detail}", server=exc.server, param=exc.param) from None


def _mapping(entry: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = entry.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise InvalidMcpConfig(f"{where}: {key}: must map names to strings", param=key)
    # YAML reads `PORT: 8080` as a number; env values and headers are strings on the wire.
    return {k: str(v) for k, v in value.items()}


def _tools(value: object, where: str, located: Callable[..., str]) -> tuple[dict[str, str], dict[str, float]]:
    aliases: dict[str, str] = {}
    timeouts: dict[str, float] = {}
    if value is None:
        return aliases, timeouts
    if not isinstance(value, Mapping):
        raise InvalidMcpConfig(f"{where}: tools: must map tool names to settings", param="tools")
    for tool, settings in value.items():
        field = f"tools.{tool}"
        if settings is None:
            continue
        if not isinstance(settings, Mapping):
            raise InvalidMcpConfig(f"{where}: {field}: must be a mapping", param=field)
        unknown = _unknown(settings, _TOOL_KEYS)
        if unknown:
            message = f"{located('tools', str(tool), unknown[0])}: {field}: unknown {_keys(unknown)}"
            raise InvalidMcpConfig(message, param=field)
        if "alias" in settings:
            aliases[str(tool)] = settings["alias"]
        if "timeout_secs" in settings:
            timeouts[str(tool)] = settings["timeout_secs"]
    return aliases, timeouts
