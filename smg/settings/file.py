"""Reading the config file (``smg --config smg.yaml``, ``SMG_CONFIG``): one YAML mapping whose keys are
the settings' names (``port: 8080``, ``api_key: [...]``) plus the list sections ``workers`` and
``mcp_servers``. The keys are checked against the model by `smg.settings.sources`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smg.errors import ConfigError
from smg.yaml_lines import YamlSyntaxError, key_line, load_yaml


@dataclass(frozen=True)
class ConfigFile:
    """A config file as read: its path (as given), text and top-level mapping."""

    path: str
    text: str = field(repr=False)
    values: Mapping[str, Any] = field(repr=False)

    def at(self, path: Sequence[str | int]) -> str:
        """``"PATH:LINE: "`` of the key or item at ``path``, else of the nearest enclosing one that is in
        the file (``"PATH: "`` when none is)."""
        for depth in range(len(path), 0, -1):
            line = key_line(self.text, path[:depth])
            if line is not None:
                return f"{self.path}:{line}: "
        return f"{self.path}: "


def read_config_file(path: str | os.PathLike[str]) -> ConfigFile:
    """Read and parse the config file at ``path``. Raises ConfigError naming the file (and the line of a
    YAML syntax error; the YAML error's excerpt is never shown, it may hold a key)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: the config file is not UTF-8 text") from None
    try:
        document = load_yaml(text)
    except YamlSyntaxError as exc:
        where = f":{exc.line}" if exc.line is not None else ""
        raise ConfigError(f"{name}{where}: not valid YAML") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{name}: the top level must be a mapping of setting names to values")
    for key in document:
        if not isinstance(key, str):
            raise ConfigError(f"{name}: setting names must be text, not {key!r}")
    return ConfigFile(name, text, document)
