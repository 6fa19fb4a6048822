"""Typed, frozen, grouped settings, declared once (`smg.settings.groups`), read once.

Each setting is one field of a group: type, default, help and checks, and the flag it is read from.
The flags, the ``SMG_*`` variables, the config file's keys (``smg --config smg.yaml``) and the
documentation's table are derived from those declarations (`smg.settings.table`); values are merged
flags > variables > file > defaults by pydantic-settings (`smg.settings.sources`). Groups validate
however they are built.

Names are imported on first use: the groups (pydantic only) for the components that receive them, the
sources (pydantic-settings, YAML, argparse) only for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smg.settings.cli import add_gateway_flags, parse_settings, resolve_namespace, settings_from_namespace
    from smg.settings.groups import (
        LOG_LEVELS,
        AdmissionSettings,
        AuthSettings,
        McpSettings,
        RequestLimits,
        ResponsesSettings,
        ServerSettings,
        Settings,
        TraceSettings,
    )
    from smg.settings.table import flag_table
    from smg.settings.workers import (
        POLICIES,
        BreakerSettings,
        HealthSettings,
        RetrySettings,
        WorkerEntry,
        WorkerSettings,
    )

_GROUPS = "smg.settings.groups"
_WORKERS = "smg.settings.workers"
_CLI = "smg.settings.cli"
_WHERE = {
    "AdmissionSettings": _GROUPS,
    "AuthSettings": _GROUPS,
    "BreakerSettings": _WORKERS,
    "HealthSettings": _WORKERS,
    "LOG_LEVELS": _GROUPS,
    "McpSettings": _GROUPS,
    "POLICIES": _WORKERS,
    "RequestLimits": _GROUPS,
    "ResponsesSettings": _GROUPS,
    "RetrySettings": _WORKERS,
    "ServerSettings": _GROUPS,
    "Settings": _GROUPS,
    "TraceSettings": _GROUPS,
    "WorkerEntry": _WORKERS,
    "WorkerSettings": _WORKERS,
    "add_gateway_flags": _CLI,
    "flag_table": "smg.settings.table",
    "parse_settings": _CLI,
    "resolve_namespace": _CLI,
    "settings_from_namespace": _CLI,
}

__all__ = [
    "LOG_LEVELS",
    "POLICIES",
    "AdmissionSettings",
    "AuthSettings",
    "BreakerSettings",
    "HealthSettings",
    "McpSettings",
    "RequestLimits",
    "ResponsesSettings",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "TraceSettings",
    "WorkerEntry",
    "WorkerSettings",
    "add_gateway_flags",
    "flag_table",
    "parse_settings",
    "resolve_namespace",
    "settings_from_namespace",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'smg.settings' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
