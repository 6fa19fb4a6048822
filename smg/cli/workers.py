"""``smg workers list|add|remove``: the admin API's worker endpoints from the command line."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

_console = Console()


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("workers", help="list, add and remove workers of a running gateway")
    parser.add_argument(
        "--gateway",
        default=os.environ.get("SMG_GATEWAY_URL", "http://127.0.0.1:30000"),
        help="gateway base URL (env SMG_GATEWAY_URL)",
    )
    parser.add_argument(
        "--admin-key", default=os.environ.get("SMG_ADMIN_KEY"), help="admin key (env SMG_ADMIN_KEY)"
    )
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    listing = actions.add_parser("list", help="list workers")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)
    add = actions.add_parser("add", help="register a worker")
    add.add_argument("url")
    add.add_argument("--api-key", default=None, help="upstream API key for this worker")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(handler=_add)
    remove = actions.add_parser("remove", help="remove a worker (by URL or id)")
    remove.add_argument("worker")
    remove.set_defaults(handler=_remove)


def _call(ns: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {ns.admin_key}"} if ns.admin_key else {}
    try:
        resp = httpx.request(method, ns.gateway.rstrip("/") + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise SystemExit(f"smg: error: cannot reach the gateway at {ns.gateway}: {exc}") from None
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text.strip()[:200]
        raise SystemExit(f"smg: error: HTTP {resp.status_code}: {message}")
    return resp.json()


def _table(workers: list[dict[str, Any]]) -> Table:
    table = Table("id", "url", "models", "healthy", "breaker", "in flight")
    for w in workers:
        models = ", ".join(w["models"]) if w["models"] is not None else "?"
        table.add_row(
            w["id"],
            w["url"],
            models,
            "yes" if w["healthy"] else "no",
            w["circuit_breaker"],
            str(w["in_flight"]),
        )
    return table


def _list(ns: argparse.Namespace) -> int:
    workers = _call(ns, "GET", "/workers")["workers"]
    if ns.json:
        print(json.dumps(workers, indent=2))
    else:
        _console.print(_table(workers))
    return 0


def _add(ns: argparse.Namespace) -> int:
    worker = _call(ns, "POST", "/workers", {"url": ns.url, "api_key": ns.api_key})
    if ns.json:
        print(json.dumps(worker, indent=2))
    else:
        _console.print(_table([worker]))
    return 0


def _remove(ns: argparse.Namespace) -> int:
    removed = _call(ns, "DELETE", f"/workers/{ns.worker}")["removed"]
    print(f"removed {removed['url']}")
    return 0
