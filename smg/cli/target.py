"""Where a management command (`smg mcp`, `smg keys`) acts: a running gateway's admin API
(``--gateway``, ``--admin-key``) or the gateway's database file offline (``--registry``), given before
or after the action."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_target_options(parser: argparse.ArgumentParser, *, default: Any, registry_help: str) -> None:
    """``--gateway``, ``--admin-key`` and ``--registry``. After the action the defaults are SUPPRESS, so
    an option absent there keeps the value given before it."""
    parser.add_argument(
        "--gateway", default=default, metavar="URL", help="gateway base URL (env SMG_GATEWAY_URL)"
    )
    parser.add_argument("--admin-key", default=default, metavar="KEY", help="admin key (env SMG_ADMIN_KEY)")
    parser.add_argument("--registry", default=default, metavar="PATH", help=registry_help)


def add_action(
    actions: Any,
    name: str,
    help_text: str,
    *,
    target_options: Callable[[argparse.ArgumentParser], None],
    handler: Callable[..., Any],
) -> argparse.ArgumentParser:
    """One action's parser: the target options again (SUPPRESS defaults), ``--json``, the handler."""
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    target_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handler)
    return parser
