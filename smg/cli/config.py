"""``smg config show``: what a gateway started with the same flags, ``SMG_*`` variables and ``--config``
file would run with, and where each value came from (a flag, a variable, the file, or the default).

Secrets are redacted: API keys, admin keys and worker keys as ``***``; MCP header and environment values
under a sensitive name as ``***`` unless they are ``${VAR}`` references, which are shown as written.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from smg.errors import ConfigError
from smg.mcp.errors import InvalidMcpConfig
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.yaml_config import load_mcp_config, static_servers
from smg.settings.cli import add_gateway_flags, resolve_namespace
from smg.settings.groups import MCP_SERVERS_KEY, McpSettings, Settings
from smg.settings.sources import Resolved
from smg.settings.table import Setting, settings_table

_HIDDEN = "***"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("config", help="show the effective gateway configuration")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    show = actions.add_parser(
        "show",
        help="print every setting, worker and MCP server a gateway would start with, and their sources",
        description="Every gateway setting as `smg launch` with the same flags, SMG_* variables and "
        "--config file would use it (flags > variables > file > defaults), with its source; "
        "workers registered at start-up; MCP servers from files. Secrets are shown as ***.",
    )
    add_gateway_flags(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)


def effective_configuration(ns: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """The effective configuration as a JSON-able document: ``settings`` (by key: value, source, flag,
    variable), ``workers`` and ``mcp_servers`` (each with its source). Secrets are redacted. Raises
    ConfigError for a bad setting or MCP server definition."""
    resolved = resolve_namespace(ns, env)
    settings = resolved.settings
    source = {key: origin.describe() for key, origin in resolved.origins.items()}
    document: dict[str, Any] = {"settings": {}, "workers": [], "mcp_servers": []}
    for s in settings_table():
        value = getattr(getattr(settings, s.group), s.field)
        document["settings"][s.key] = {
            "value": _shown(s, (not value) if s.flag.invert else value),
            "source": source[s.key],
            "flag": s.option,
            "env": s.env,
        }
    workers = settings.workers
    for worker in workers.static:
        origin = source["worker_urls"] if worker.url in workers.urls else source["workers"]
        key = _HIDDEN if worker.api_key is not None else None
        document["workers"].append({"url": worker.url, "api_key": key, "source": origin})
    document["mcp_servers"] = _mcp_servers(resolved)
    return document


def _shown(setting: Setting, value: Any) -> Any:
    if isinstance(value, tuple):
        return [_HIDDEN if setting.secret else v for v in value]
    return _HIDDEN if setting.secret and value is not None else value


def check_mcp_files(settings: Settings) -> None:
    """Parse the MCP servers of ``--mcp-config-path`` and of the config file as the gateway does when it
    starts, so that ``smg launch`` refuses a bad definition before anything is started (workers
    contacted, MCP servers spawned). Raises ConfigError naming the file, its line and the key."""
    _static_servers(settings.mcp)


def _static_servers(mcp: McpSettings) -> list[ServerSpec]:
    try:
        return static_servers(mcp.config_path, mcp.servers_file, key=MCP_SERVERS_KEY)
    except InvalidMcpConfig as exc:
        raise ConfigError(exc.message, param=exc.param) from None


def _mcp_servers(resolved: Resolved) -> list[dict[str, Any]]:
    mcp = resolved.settings.mcp
    specs = _static_servers(mcp)
    from_yaml = {s.name for s in load_mcp_config(mcp.config_path)} if mcp.config_path else set()
    return [
        {
            **spec.redacted(),
            "source": f"file {mcp.config_path if spec.name in from_yaml else mcp.servers_file}",
        }
        for spec in specs
    ]


def _text(value: Any) -> str:
    if value is None or value == []:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pairs(mapping: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def _show(ns: argparse.Namespace) -> int:
    from smg.cli.tables import print_table

    document = effective_configuration(ns, os.environ)
    if ns.json:
        print(json.dumps(document, indent=2))
        return 0
    console = Console()
    rows = [(key, _text(row["value"]), row["source"]) for key, row in document["settings"].items()]
    print_table(console, ("setting", "value", "source"), rows)
    if document["workers"]:
        console.file.write("\nworkers registered at start-up\n")
        rows = [(w["url"], w["api_key"] or "unset", w["source"]) for w in document["workers"]]
        print_table(console, ("url", "api key", "source"), rows)
    if document["mcp_servers"]:
        console.file.write("\nMCP servers from files\n")
        servers = [
            (
                s["name"],
                s["transport"],
                s["url"] or " ".join([s["command"] or "", *s["args"]]),
                _pairs({**s["headers"], **s["env"]}),
                s["source"],
            )
            for s in document["mcp_servers"]
        ]
        print_table(console, ("name", "transport", "url or command", "headers and env", "source"), servers)
    return 0
