"""``smg workers list|add|remove``: the admin API's worker endpoints from the command line.

Failures print one line, ``smg: error: ...``, on stderr and exit 1 (see `smg.cli.gateway_http` for the
wording of an unreachable gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console

from smg.cli.gateway_http import GatewayClient, GatewayError
from smg.cli.mcp_render import clean, error
from smg.cli.progress import progress
from smg.cli.tables import print_table

_console = Console()
_TIMEOUT_SECS = 30.0


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
    listing.set_defaults(handler=_handler(_list))
    add = actions.add_parser("add", help="register a worker")
    add.add_argument("url")
    add.add_argument("--api-key", default=None, help="upstream API key for this worker")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(handler=_handler(_add))
    remove = actions.add_parser("remove", help="remove a worker (by URL or id)")
    remove.add_argument("worker")
    remove.set_defaults(handler=_handler(_remove))


Action = Callable[[argparse.Namespace, GatewayClient], Awaitable[int]]


def _handler(action: Action) -> Callable[[argparse.Namespace], int]:
    def handle(ns: argparse.Namespace) -> int:
        async def run() -> int:
            async with GatewayClient(ns.gateway, ns.admin_key, timeout=_TIMEOUT_SECS) as client:
                return await action(ns, client)

        try:
            return asyncio.run(run())
        except GatewayError as exc:
            error(exc.message)
            return 1

    return handle


def _table(workers: list[dict[str, Any]]) -> None:
    rows = [
        [
            clean(w["id"]),
            clean(w["url"]),
            ", ".join(map(clean, w["models"])) if w["models"] is not None else "?",
            "yes" if w["healthy"] else "no",
            clean(w["circuit_breaker"]),
            str(w["in_flight"]),
        ]
        for w in workers
    ]
    print_table(_console, ("id", "url", "models", "healthy", "breaker", "in flight"), rows)


async def _list(ns: argparse.Namespace, client: GatewayClient) -> int:
    async with progress("listing workers"):
        workers = (await client.request("GET", "/workers"))["workers"]
    if ns.json:
        print(json.dumps(workers, indent=2))
    else:
        _table(workers)
    return 0


async def _add(ns: argparse.Namespace, client: GatewayClient) -> int:
    async with progress(f"adding worker {ns.url}"):
        worker = await client.request("POST", "/workers", body={"url": ns.url, "api_key": ns.api_key})
    if ns.json:
        print(json.dumps(worker, indent=2))
    else:
        _table([worker])
    return 0


async def _remove(ns: argparse.Namespace, client: GatewayClient) -> int:
    async with progress(f"removing worker {ns.worker}"):
        removed = (await client.request("DELETE", f"/workers/{ns.worker}"))["removed"]
    print(f"removed {clean(removed['url'])}")
    return 0
