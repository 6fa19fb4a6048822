"""smg: an OpenAI-compatible, MCP-aware agent gateway.

The public surface is small: build settings, build the app (or the context it runs on), serve it.
Names are imported lazily so that ``import smg`` (and every ``smg`` subcommand) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "build_context", "create_app", "parse_settings"]

_LAZY = {
    "Settings": "smg.settings",
    "parse_settings": "smg.settings",
    "create_app": "smg.app",
    "build_context": "smg.context",
}

if TYPE_CHECKING:
    from smg.app import create_app
    from smg.context import build_context
    from smg.settings import Settings, parse_settings


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smg' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
