"""``smg keys create|list|show|revoke``: API keys that carry scopes, from the command line.

Target, as for ``smg mcp``: ``--gateway URL`` (with ``--admin-key``) uses a running gateway's admin API
(``/keys``); ``--registry PATH`` edits the gateway's database file directly (offline; a running gateway
on that file sees the change within a second). Without either flag, ``$SMG_GATEWAY_URL`` selects the
gateway, else the file at ``default_registry_path``. The target options are accepted both before and
after the action.

``create`` prints the new key alone on stdout (``KEY=$(smg keys create ci)``), once: only its digest is
stored. ``list`` and ``show`` never print a key. Failures print one line, ``smg: error: ...``, on
stderr: exit 1 for a failed operation, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from rich.console import Console

from smg.cli import mcp_render as render
from smg.cli.gateway_http import GatewayClient
from smg.cli.progress import progress
from smg.cli.tables import print_table
from smg.cli.target import add_action, add_target_options
from smg.errors import ConfigError, SmgError
from smg.settings.paths import default_registry_path

_console = Console()
_TIMEOUT_SECS = 30.0


class Backend(Protocol):
    """One target of ``smg keys``; every method returns the admin API's wire shapes."""

    async def create(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def list(self) -> list[dict[str, Any]]: ...
    async def get(self, name: str) -> dict[str, Any]: ...
    async def revoke(self, name: str) -> dict[str, Any]: ...


class _Gateway:
    def __init__(self, client: GatewayClient) -> None:
        self._client = client

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._client.request("POST", "/keys", body=body)

    async def list(self) -> list[dict[str, Any]]:
        return list((await self._client.request("GET", "/keys"))["keys"])

    async def get(self, name: str) -> dict[str, Any]:
        return await self._client.request("GET", "/keys/" + quote(name, safe=""))

    async def revoke(self, name: str) -> dict[str, Any]:
        return await self._client.request("POST", f"/keys/{quote(name, safe='')}/revoke")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("keys", help="create, list, show and revoke API keys that carry scopes")
    _add_target_options(parser, default=None)
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    create = _action(actions, "create", "create a key and print it (once)")
    create.add_argument("name", help="key name (1-64 of a-z A-Z 0-9 _ -)")
    create.add_argument("--servers", type=_names, metavar="S,...", help="MCP servers the key may use")
    create.add_argument(
        "--tools", type=_names, metavar="SERVER__TOOL,...", help="MCP tools the key may use (and only those)"
    )
    create.add_argument("--models", type=_names, metavar="M,...", help="models the key may use")
    create.add_argument("--rpm", type=int, metavar="N", help="requests per minute the key may make")
    create.add_argument("--expires", metavar="DURATION", help="lifetime: seconds, or 90m, 12h, 30d, 1d12h")
    _action(actions, "list", "list keys (never their values)")
    show = _action(actions, "show", "show one key (never its value)")
    show.add_argument("name")
    revoke = _action(actions, "revoke", "revoke a key (a running gateway refuses it within a second)")
    revoke.add_argument("name")


def _action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    return add_action(
        actions,
        name,
        help_text,
        target_options=lambda parser: _add_target_options(parser, default=argparse.SUPPRESS),
        handler=handle,
    )


def _add_target_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    add_target_options(
        parser,
        default=default,
        registry_help="the gateway's database file (its MCP registry file), offline (env SMG_MCP_REGISTRY)",
    )


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def handle(ns: argparse.Namespace, *, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``smg keys`` action (``environ`` is a test seam)."""
    environ = os.environ if environ is None else environ
    if ns.gateway and ns.registry:
        raise ConfigError("give --gateway or --registry, not both")
    body = _create_body(ns) if ns.action == "create" else {}
    gateway = ns.gateway or (None if ns.registry else environ.get("SMG_GATEWAY_URL"))
    admin_key = ns.admin_key or environ.get("SMG_ADMIN_KEY") or None
    path = None if gateway else Path(ns.registry or default_registry_path(environ)).expanduser()
    try:
        return asyncio.run(_run(ns, body, gateway, admin_key, path))
    except ConfigError:
        raise  # main() prints it and exits 2
    except SmgError as exc:
        render.error(exc.message)
        return 1


async def _run(
    ns: argparse.Namespace,
    body: dict[str, Any],
    gateway: str | None,
    admin_key: str | None,
    path: Path | None,
) -> int:
    if gateway is not None:
        async with GatewayClient(gateway, admin_key, timeout=_TIMEOUT_SECS) as client:
            return await _act(ns, _Gateway(client), body)
    from smg.keys.ring import KeyRing  # offline only: the gateway's modules are not needed for HTTP
    from smg.keys.service import Keys
    from smg.keys.store import SqliteKeyStore

    assert path is not None
    return await _act(ns, Keys(SqliteKeyStore(path), KeyRing()), body)


def _create_body(ns: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": ns.name}
    for field in ("servers", "tools", "models", "rpm"):
        if getattr(ns, field) is not None:
            body[field] = getattr(ns, field)
    if ns.expires is not None:
        body["expires_in"] = ns.expires
    return body


async def _act(ns: argparse.Namespace, backend: Backend, body: dict[str, Any]) -> int:
    if ns.action == "create":
        async with progress(f"creating key {ns.name!r}"):
            created = await backend.create(body)
        if ns.json:
            render.print_json(created)
            return 0
        view = created["key"]
        print(
            f"created key {render.clean(view['name'])!r} ({_summary(view)}); "
            "it is shown only now: store it safely",
            file=sys.stderr,
        )
        print(created["secret"])
        return 0
    if ns.action == "list":
        async with progress("listing keys"):
            views = await backend.list()
        if ns.json:
            render.print_json({"keys": views})
        elif not views:
            _console.print("no API keys stored")
        else:
            print_table(_console, (*_COLUMNS[:-1], "expires"), [_row(v) for v in views])
        return 0
    async with progress(f"{'revoking' if ns.action == 'revoke' else 'showing'} key {ns.name!r}"):
        view = await (backend.revoke(ns.name) if ns.action == "revoke" else backend.get(ns.name))
    if ns.json:
        render.print_json(view)
    elif ns.action == "revoke":
        print(f"revoked key {render.clean(view['name'])!r}")
    else:
        shown = dict(zip(_COLUMNS, _row(view), strict=True))
        rows = [[field, shown.get(field) or _cell(view.get(field))] for field in view]
        print_table(_console, ("field", "value"), rows, header=False)
    return 0


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(render.clean(v) for v in value)
    return render.clean(value)


_COLUMNS = ("name", "state", "servers", "tools", "models", "rpm", "expires_at")


def _row(view: Mapping[str, Any]) -> list[str]:
    scope = [_cell(view[f]) if view.get(f) is not None else "any" for f in ("servers", "tools", "models")]
    rpm = _cell(view.get("rpm")) if view.get("rpm") is not None else "unlimited"
    expires = _cell(view.get("expires_at")) if view.get("expires_at") else "never"
    return [_cell(view.get("name")), _cell(view.get("state")), *scope, rpm, expires]


def _summary(view: Mapping[str, Any]) -> str:
    parts: Sequence[str] = [
        f"{field}: {_cell(view.get(field))}"
        for field in ("servers", "tools", "models", "rpm")
        if view.get(field)
    ]
    if view.get("expires_at"):
        parts = [*parts, f"expires {view['expires_at']}"]
    return "; ".join(parts) or "unrestricted"
