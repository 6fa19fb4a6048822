"""Where a value came from, and a validation error as one line naming that place: the flag, the
``SMG_*`` variable or the config file and line. A secret's value is never echoed."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from smg.errors import ConfigError
from smg.settings.file import ConfigFile
from smg.settings.table import Setting, sections, settings_table

_OPS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


@dataclass(frozen=True)
class Origin:
    """Where the value of setting ``key`` came from; ``path`` is the config file's, for ``file``."""

    kind: Literal["flag", "env", "file", "default"]
    key: str
    path: str | None = None

    def describe(self) -> str:
        """``flag --port``, ``env SMG_PORT``, ``file smg.yaml`` or ``default``."""
        setting = _by_key().get(self.key)
        if self.kind == "flag" and setting is not None:
            return f"flag {setting.option}"
        if self.kind == "env" and setting is not None:
            return f"env {setting.env}"
        if self.kind == "file":
            return f"file {self.path}"
        return "default"


def _by_key() -> dict[str, Setting]:
    return {s.key: s for s in settings_table()}


def _known_keys() -> list[str]:
    return [s.key for s in settings_table()] + [s.key for s in sections()]


def config_error(
    exc: ValidationError,
    origins: Mapping[str, Origin],
    config: ConfigFile | None,
    *,
    group: str | None = None,
) -> ConfigError:
    """The first error of ``exc`` as a ConfigError, located by ``origins``. ``group``: ``exc`` was
    raised by that group (its locations are the group's field names), not by the flat model."""
    err = exc.errors()[0]
    loc: list[str | int] = list(err["loc"])
    if group is not None:
        loc = [_group_key(group, loc), *loc[1:]]
    key = str(loc[0]) if loc else ""
    origin = origins.get(key, Origin("default", key))
    setting = _by_key().get(key)
    reason = _reason(err, setting)
    if origin.kind == "flag" and setting is not None:
        return ConfigError(f"{setting.option}: {reason}", param=setting.option)
    if origin.kind == "env" and setting is not None:
        return ConfigError(f"{setting.env}: {reason}", param=setting.env)
    if config is not None and origin.kind == "file":
        path = list(loc)
        culprit = getattr((err.get("ctx") or {}).get("error"), "key", None)
        if isinstance(culprit, str):  # a worker entry's offending key: point at its line
            path.append(culprit)
        if err["type"] == "extra_forbidden":
            return ConfigError(f"{config.at(path)}{reason}", param=key)
        return ConfigError(f"{config.at(path)}{_dotted(loc)}: {reason}", param=key)
    return ConfigError(f"{key}: {reason}", param=key)


def _group_key(group: str, loc: Sequence[str | int]) -> str:
    field = str(loc[0]) if loc else None
    for s in settings_table():
        if s.group == group and s.field == field:
            return s.key
    for section in sections():
        if section.group == group and (field is None or section.field == field):
            return section.key
    return group


def _dotted(loc: Sequence[str | int]) -> str:
    """``workers[1].url`` for the location ``("workers", 1, "url")``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reason(err: Mapping[str, Any], setting: Setting | None) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        match = difflib.get_close_matches(key.replace("-", "_"), _known_keys(), n=1)
        hint = f"; did you mean {match[0]!r}?" if match else " (keys are the flags' names with underscores)"
        return f"unknown key {key!r}{hint}"
    if kind == "literal_error" and setting is not None and setting.choices:
        return f"{value!r} is not one of {', '.join(setting.choices)}"
    if kind in _OPS:
        low = setting.bound("ge") if setting else None
        high = setting.bound("le") if setting else None
        if low is not None and high is not None:
            return f"must be between {_number(low)} and {_number(high)}"
        limit = next(iter(ctx.values()), "?")
        return f"must be {_OPS[kind]} {_number(limit)}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind.endswith(("_parsing", "_type")) or kind == "int_from_float":
        secret = setting is not None and setting.secret
        return "invalid value" if secret else f"invalid value {value!r}"
    return str(err["msg"])
