"""The gateway's command-line flags, derived from the settings table, and the entry points that turn
parsed flags plus ``SMG_*`` variables plus the config file into `Settings`.

Every setting ``--some-flag`` also reads ``SMG_SOME_FLAG`` and the config file key ``some_flag``. List
flags take several values (or the flag repeated) and a comma- or space-separated variable; switches are
bare flags, and ``1/true/yes/on`` or ``0/false/no/off`` in a variable. Flags are never abbreviated.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from smg.errors import ConfigError
from smg.settings.file import read_config_file
from smg.settings.groups import Settings
from smg.settings.sources import Resolved, resolve
from smg.settings.table import groups, settings_table

CONFIG_ENV = "SMG_CONFIG"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def add_gateway_flags(parser: argparse.ArgumentParser) -> None:
    """Declare ``--config`` and every gateway flag on ``parser``, one argument group per settings group
    (defaults are applied later, by `settings_from_namespace`: an absent flag is None)."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help=f"YAML file of gateway settings, workers and MCP servers (env {CONFIG_ENV}); "
        "flags and SMG_* variables win over it",
    )
    for name, cls in groups().items():
        members = [s for s in settings_table() if s.group == name]
        section = parser.add_argument_group(name, (cls.__doc__ or "").strip().splitlines()[0])
        for s in members:
            if s.switch:
                section.add_argument(s.option, action="store_true", default=None, help=s.help)
            else:
                section.add_argument(
                    s.option,
                    nargs="+" if s.many else None,
                    action="extend" if s.many else "store",
                    default=None,
                    help=f"{s.help} (env {s.env})",
                    metavar=s.key.upper(),
                )


def resolve_namespace(ns: argparse.Namespace, env: Mapping[str, str]) -> Resolved:
    """`Resolved` settings from parsed flags, ``SMG_*`` variables and the config file named by
    ``--config`` (else ``SMG_CONFIG``). Raises ConfigError with a one-line message naming the flag,
    variable or file line of a bad value."""
    flags: dict[str, Any] = {}
    for s in settings_table():
        value = getattr(ns, s.key, None)
        if value is not None:
            flags[s.key] = value
    path = getattr(ns, "config", None) or env.get(CONFIG_ENV) or None
    return resolve(flags, env, read_config_file(path) if path else None)


def settings_from_namespace(ns: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Build and validate `Settings` from parsed flags, ``SMG_*`` variables and the config file.

    Raises ConfigError with a one-line message naming the flag when a value is out of range.
    """
    return resolve_namespace(ns, env).settings


def parse_settings(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """Parse gateway flags (``smg launch`` arguments) into `Settings`. Raises ConfigError."""
    parser = _Parser(prog="smg launch", add_help=False, allow_abbrev=False)
    add_gateway_flags(parser)
    ns = parser.parse_args(list(argv))
    return settings_from_namespace(ns, os.environ if env is None else env)
