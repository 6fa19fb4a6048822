"""Default file locations that depend on the environment (the settings own the process environment)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def default_registry_path(environ: Mapping[str, str]) -> Path:
    """``$SMG_MCP_REGISTRY``, else ``$XDG_STATE_HOME/smg/mcp.db``, else ``~/.local/state/smg/mcp.db``.

    ``environ`` is passed in; empty values count as unset and, as the XDG spec says, a relative
    ``XDG_STATE_HOME`` is ignored.
    """
    explicit = environ.get("SMG_MCP_REGISTRY")
    if explicit:
        return Path(explicit).expanduser()
    state = environ.get("XDG_STATE_HOME")
    if state and Path(state).is_absolute():
        return Path(state) / "smg" / "mcp.db"
    home = environ.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".local" / "state" / "smg" / "mcp.db"
