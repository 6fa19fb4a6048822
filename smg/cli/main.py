"""The ``smg`` command. Bare ``smg [flags]`` is ``smg launch [flags]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from smg import __version__
from smg.errors import ConfigError
from smg.settings import add_gateway_flags, settings_from_namespace

_SUBCOMMANDS = ("launch", "demo", "workers", "mcp", "keys", "config")


class _Parser(argparse.ArgumentParser):
    """Errors are one line (`ConfigError`); options are never abbreviated (``--worker-url`` is not
    ``--worker-urls``). Subcommand parsers are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]  # one clear line, no usage dump
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="smg", description="OpenAI-compatible, MCP-aware agent gateway")
    parser.add_argument("--version", action="version", version=f"smg {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    launch = sub.add_parser("launch", help="run the gateway (the default command)")
    add_gateway_flags(launch)

    demo = sub.add_parser("demo", help="run the gateway with a demo worker on loopback")
    demo.add_argument(
        "--port", type=int, default=None, help="gateway port (default: 30000 if free, else any)"
    )
    demo.add_argument(
        "--log-level",
        choices=("debug", "info", "warn", "warning", "error"),
        default="warn",
        help="log level of the demo gateway (default: warn); logs go to stderr",
    )

    from smg.cli import config, keys, mcp, workers

    workers.add_parser(sub)
    mcp.add_parser(sub)
    keys.add_parser(sub)
    config.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in _SUBCOMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "launch")
    try:
        ns = build_parser().parse_args(args)
        if ns.command == "launch":
            from smg.cli.config import check_mcp_files
            from smg.cli.launch import run
            from smg.observability.logs import configure_logging

            settings = settings_from_namespace(ns, os.environ)
            check_mcp_files(settings)
            configure_logging(settings.server.log_level, json=settings.server.log_json)
            return run(settings, args)
        if ns.command == "demo":
            from smg.cli.demo import run_demo

            return run_demo(port=ns.port, log_level=ns.log_level)
        code = ns.handler(ns)
        assert isinstance(code, int)
        return code
    except ConfigError as exc:
        print(f"smg: error: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left early (`smg mcp list --json | head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush is quiet
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
