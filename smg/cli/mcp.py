"""``smg mcp add|list|show|remove|tools|call|check``: MCP server registration from the command line.

Target: ``--gateway URL`` (with ``--admin-key``) uses a running gateway's admin API; ``--registry PATH``
edits the SQLite registry file directly (offline). Without either flag, ``$SMG_GATEWAY_URL`` selects the
gateway, else the registry at ``default_registry_path`` is used. The target options are accepted both
before and after the action (``smg mcp --registry x list`` and ``smg mcp list --registry x``).

Failures print one line, ``smg: error: ...``, on stderr: exit 1 for a failed operation, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import httpx

from smg.cli import mcp_render as render
from smg.cli.mcp_gateway import GatewayBackend
from smg.cli.progress import progress
from smg.cli.target import add_action, add_target_options
from smg.errors import ConfigError, SmgError
from smg.mcp.errors import InvalidMcpConfig
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.store import default_registry_path

DEFAULT_TIMEOUT = 30.0


class Backend(Protocol):
    """One target of ``smg mcp``; every method returns the admin API's wire shapes."""

    async def list_servers(self) -> list[dict[str, Any]]: ...
    async def show(self, name: str) -> dict[str, Any]: ...
    async def add(self, spec: ServerSpec, *, dry_run: bool) -> dict[str, Any]: ...
    async def remove(self, name: str) -> dict[str, Any]: ...
    async def tools(self, name: str | None, *, refresh: bool) -> tuple[list[dict[str, Any]], list[str]]: ...
    async def call(self, name: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]: ...
    async def check(self) -> list[dict[str, Any]]: ...


# --- parser -----------------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("mcp", help="register, inspect and try MCP servers (gateway or registry file)")
    _add_target_options(parser, default=None)
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))

    add = actions.add_parser("add", help="validate and register an MCP server")
    _add_add_options(add)
    add.add_argument("name", help="server name (1-32 of a-z A-Z 0-9 _ -)")
    add.add_argument("rest", nargs=argparse.REMAINDER, help="[options] [-- COMMAND [ARGS...]] for stdio")
    add.set_defaults(handler=handle)

    _action(actions, "list", "list registered MCP servers")
    show = _action(actions, "show", "show one MCP server")
    show.add_argument("name")
    remove = _action(actions, "remove", "unregister an MCP server")
    remove.add_argument("name")
    tools = _action(actions, "tools", "list the tools of one or every MCP server")
    tools.add_argument("name", nargs="?", default=None)
    tools.add_argument("--refresh", action="store_true", help="re-list from the server, not the cache")
    call = _action(actions, "call", "call one tool once")
    call.add_argument("name")
    call.add_argument("tool", help="the tool's name or its exposed name")
    call.add_argument("--args", default="{}", metavar="JSON", help="arguments as a JSON object")
    _action(actions, "check", "connect to every MCP server and list its tools")


def _action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    return add_action(
        actions,
        name,
        help_text,
        target_options=lambda parser: _add_target_options(parser, default=argparse.SUPPRESS),
        handler=handle,
    )


def _add_target_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    add_target_options(parser, default=default, registry_help="registry file, offline (env SMG_MCP_REGISTRY)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=default if default is argparse.SUPPRESS else DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"connect/list timeout (default {DEFAULT_TIMEOUT:g})",
    )


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text.split('=', 1)[0]!r}")
    return key, value


def _add_add_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    _add_target_options(parser, default=argparse.SUPPRESS)
    parser.add_argument("--url", default=default(None), help="server URL (HTTP transports)")
    parser.add_argument(
        "--transport", choices=("streamable-http", "sse", "stdio"), default=default(None),
        help="default: streamable-http with --url, stdio with a command",
    )  # fmt: skip
    parser.add_argument(
        "--env", action="append", type=_key_value, default=default([]), metavar="K=V",
        help="environment of a stdio server (repeatable; a value may be ${VAR})",
    )  # fmt: skip
    parser.add_argument(
        "--header", action="append", type=_key_value, default=default([]), metavar="K=V",
        help="HTTP header (repeatable; write secrets as ${VAR}, resolved at connect time)",
    )  # fmt: skip
    parser.add_argument(
        "--expose", choices=("always", "on-request"), default=default("on-request"),
        help="offer the tools on every request, or only when asked (default on-request)",
    )  # fmt: skip
    parser.add_argument(
        "--tool-timeout", type=float, default=default(None), metavar="SECONDS",
        help="timeout of one tool call (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--required", action="store_true", default=default(False),
        help="fail requests that want this server's tools while it is down",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", default=default(False), help="validate, save nothing"
    )
    parser.add_argument("--json", action="store_true", default=default(False), help="print JSON")
    parser.add_argument(
        "--mcp-allowed-hosts", nargs="+", action="extend", default=default(None), metavar="PATTERN",
        help="offline: check the URL against these hosts, as a gateway would (env SMG_MCP_ALLOWED_HOSTS)",
    )  # fmt: skip
    parser.add_argument(
        "--config", default=default(None), metavar="PATH",
        help="offline: read --mcp-allowed-hosts from this gateway config file (env SMG_CONFIG)",
    )  # fmt: skip


class _OptionsParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one clear line, no usage dump
        raise ConfigError(message)


def _finish_add_args(ns: argparse.Namespace) -> list[str]:
    """Parse the options written after NAME into ``ns``; return the stdio command (empty if none).

    argparse cannot mix options with a trailing ``-- COMMAND``, so NAME takes the rest of the line and it
    is split here: options up to ``--``, the command after it. A rest that starts with a word is the
    command (argparse drops a leading ``--``).
    """
    rest: list[str] = ns.rest
    if rest and rest[0] == "--":
        return rest[1:]
    if rest and not rest[0].startswith("-"):
        return rest
    split = rest.index("--") if "--" in rest else len(rest)
    options = _OptionsParser(prog="smg mcp add", add_help=False, allow_abbrev=False)
    _add_add_options(options, suppress=True)
    extra = options.parse_known_args(rest[:split], namespace=ns)[1]
    if extra and extra[0].startswith("-"):
        raise ConfigError(f"unrecognized option {extra[0]!r}")
    if extra:
        raise ConfigError(f"unexpected argument {extra[0]!r} (a stdio command goes after --)")
    return rest[split + 1 :]


def _spec_from_args(ns: argparse.Namespace, command: list[str]) -> ServerSpec:
    if command and ns.url:
        raise ConfigError("give --url URL or -- COMMAND [ARGS...], not both")
    if not command and not ns.url:
        raise ConfigError("give --url URL (HTTP) or -- COMMAND [ARGS...] (stdio)")
    if command and ns.transport not in (None, "stdio"):
        raise ConfigError(f"--transport {ns.transport} needs --url, not a command")
    if ns.url and ns.transport == "stdio":
        raise ConfigError("--transport stdio needs -- COMMAND [ARGS...], not --url")
    if ns.url and ns.env:
        raise ConfigError("--env applies to stdio servers only")
    values: dict[str, Any] = {
        "name": ns.name,
        "transport": "stdio" if command else (ns.transport or "streamable-http"),
        "url": ns.url,
        "command": command[0] if command else None,
        "args": tuple(command[1:]),
        "env": dict(ns.env),
        "headers": dict(ns.header),
        "expose": ns.expose,
        "required": ns.required,
    }
    if ns.tool_timeout is not None:
        values["tool_timeout_secs"] = ns.tool_timeout
    try:
        return ServerSpec(**values)
    except InvalidMcpConfig as exc:
        raise ConfigError(exc.message) from None


# --- gateway target ---------------------------------------------------------------------------------


def _backend(
    ns: argparse.Namespace, environ: Mapping[str, str], transport: httpx.AsyncBaseTransport | None
) -> AbstractAsyncContextManager[Backend]:
    if ns.gateway and ns.registry:
        raise ConfigError("give --gateway or --registry, not both")
    gateway = ns.gateway or (None if ns.registry else environ.get("SMG_GATEWAY_URL"))
    hosts_given = getattr(ns, "mcp_allowed_hosts", None) or getattr(ns, "config", None)
    if gateway:
        if hosts_given:
            raise ConfigError(
                "--mcp-allowed-hosts and --config apply to the registry file; "
                "a gateway checks URLs against its own --mcp-allowed-hosts"
            )
        key = ns.admin_key or environ.get("SMG_ADMIN_KEY") or None
        return GatewayBackend(gateway, key, timeout=ns.timeout, transport=transport)
    from smg.cli.mcp_offline import OfflineBackend, allowed_hosts

    path = Path(ns.registry).expanduser() if ns.registry else default_registry_path(environ)
    if ns.action != "add":
        return OfflineBackend(path, timeout=ns.timeout)
    hosts, source = allowed_hosts(ns.mcp_allowed_hosts, ns.config, environ)
    return OfflineBackend(path, timeout=ns.timeout, hosts=hosts, hosts_source=source)


def handle(
    ns: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run one ``smg mcp`` action; ``environ`` and ``transport`` (the gateway's HTTP) are test seams."""
    try:
        return asyncio.run(_run(ns, os.environ if environ is None else environ, transport))
    except ConfigError:
        raise  # main() prints it and exits 2
    except SmgError as exc:
        return render.failure(exc, as_json=bool(getattr(ns, "json", False)))


async def _run(
    ns: argparse.Namespace, environ: Mapping[str, str], transport: httpx.AsyncBaseTransport | None
) -> int:
    # Usage errors first: nothing is connected or opened for a command line that is wrong.
    spec = _spec_from_args(ns, _finish_add_args(ns)) if ns.action == "add" else None
    arguments = _arguments(ns.args) if ns.action == "call" else {}
    async with _backend(ns, environ, transport) as backend:
        if spec is not None:
            async with progress(f"validating MCP server {spec.name!r}: connecting, listing its tools"):
                result = await backend.add(spec, dry_run=ns.dry_run)
            return render.added(result, as_json=ns.json)
        if ns.action == "list":
            async with progress("listing MCP servers"):
                views = await backend.list_servers()
            return render.servers(views, as_json=ns.json)
        if ns.action == "show":
            async with progress(f"showing MCP server {ns.name!r} and its tools"):
                view = await backend.show(ns.name)
            return render.server(view, as_json=ns.json)
        if ns.action == "remove":
            async with progress(f"removing MCP server {ns.name!r}"):
                removed = await backend.remove(ns.name)
            return render.removed(removed, as_json=ns.json)
        if ns.action == "tools":
            async with progress("listing tools"):
                listing, warnings = await backend.tools(ns.name, refresh=ns.refresh)
            for warning in warnings:
                render.warn(warning)
            return render.tools(listing, as_json=ns.json)
        if ns.action == "call":
            async with progress(f"calling {ns.tool!r} of MCP server {ns.name!r}"):
                called = await backend.call(ns.name, ns.tool, arguments)
            return render.called(called, as_json=ns.json)
        async with progress("checking every MCP server"):
            rows = await backend.check()
        return render.checks(rows, as_json=ns.json)


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--args is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError("--args must be a JSON object")
    return value
