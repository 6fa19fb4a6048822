"""Where values come from, and which wins: flags > ``SMG_*`` variables > config file > defaults.

The sources are pydantic-settings sources over one flat settings model generated from the groups' fields
(`smg.settings.table`): its field names are the settings' keys, its types and checks are the fields'
own. pydantic-settings merges the sources in order of precedence and validates the result; the groups
are then built from it. Every value's origin is kept for ``smg config show`` and for error messages.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError, create_model
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import DefaultSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from smg.settings.file import ConfigFile
from smg.settings.groups import Settings
from smg.settings.messages import Origin, config_error
from smg.settings.paths import default_registry_path
from smg.settings.table import groups, sections, settings_table


class _Flat(BaseSettings):
    # Case-insensitive only as pydantic-settings' mechanics need: `_Env` passes exact SMG_* names only.
    # No decoding: a list variable is comma/space-separated text, split by the field's own validator.
    model_config = SettingsConfigDict(
        env_prefix="SMG_",
        case_sensitive=False,
        extra="forbid",
        enable_decoding=False,
        frozen=True,
        allow_inf_nan=False,
    )


@functools.cache
def flat_model() -> type[BaseSettings]:
    """The flat model: one field per setting key and per config file section, typed and checked as
    the group field it comes from."""
    fields: dict[str, Any] = {
        s.key: (s.annotation, Field(s.default, description=s.help, repr=not s.secret))
        for s in settings_table()
    }
    for section in sections():
        kind = tuple[Any, ...] if section.section.by_path else section.annotation
        kind = kind | None
        fields[section.key] = (kind, Field(None, description=section.section.help))
    model: type[BaseSettings] = create_model("GatewaySettings", __base__=_Flat, **fields)
    return model


class _Flags(InitSettingsSource):
    """Values given on the command line (None: not given)."""


class _Env(EnvSettingsSource):
    """``SMG_*`` variables of ``environ`` (a mapping, not necessarily the process environment)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        names = {s.env for s in settings_table()}
        self._environ = {k: v for k, v in environ.items() if k in names}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _File(PydanticBaseSettingsSource):
    """The config file's top-level keys, unknown ones included (the flat model refuses those)."""

    def __init__(self, settings_cls: type[BaseSettings], config: ConfigFile | None) -> None:
        super().__init__(settings_cls)
        self._values = dict(config.values) if config is not None else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


@dataclass(frozen=True)
class Resolved:
    """Effective settings, where each setting's value came from (by key), and the config file."""

    settings: Settings
    origins: Mapping[str, Origin]
    config: ConfigFile | None


def resolve(flags: Mapping[str, Any], environ: Mapping[str, str], config: ConfigFile | None) -> Resolved:
    """Merge ``flags`` (by setting key; only the flags given), the ``SMG_*`` variables of ``environ`` and
    ``config`` into validated `Settings`. Raises ConfigError with one line naming the flag, the variable
    or the file (with its line) the bad value came from."""
    model = flat_model()
    layers: list[tuple[Literal["flag", "env", "file"], PydanticBaseSettingsSource]] = [
        ("flag", _Flags(model, init_kwargs=dict(flags))),
        ("env", _Env(model, environ)),
        ("file", _File(model, config)),
    ]
    given = {kind: source() for kind, source in layers}
    origins: dict[str, Origin] = {}
    for key in {k for values in given.values() for k in values}:
        kind = next(kind for kind, _ in layers if key in given[kind])
        origins[key] = Origin(kind, key, config.path if kind == "file" and config is not None else None)
    try:
        flat = model(_build_sources=((*(s for _, s in layers), DefaultSettingsSource(model)), {}))
    except ValidationError as exc:
        raise config_error(exc, origins, config) from None
    settings = _settings(flat, environ, config, origins)
    return Resolved(settings, {k: origins.get(k, Origin("default", k)) for k in _keys()}, config)


def _keys() -> list[str]:
    return [s.key for s in settings_table()] + [s.key for s in sections()]


def _settings(
    flat: BaseSettings, environ: Mapping[str, str], config: ConfigFile | None, origins: Mapping[str, Origin]
) -> Settings:
    values: dict[str, dict[str, Any]] = {name: {} for name in groups()}
    for s in settings_table():
        value = getattr(flat, s.key)
        values[s.group][s.field] = (not value) if s.flag.invert else value
    for section in sections():
        value = getattr(flat, section.key)
        if section.section.by_path:
            value = config.path if value and config is not None else None
        elif value is None:
            continue
        values[section.group][section.field] = value
    if values["mcp"]["registry_path"] is None:  # the command line always names a registry file
        values["mcp"]["registry_path"] = str(default_registry_path(environ))
    built: dict[str, Any] = {}
    for name, cls in groups().items():
        try:
            built[name] = cls(**values[name])
        except ValidationError as exc:  # a check across the group's fields (each field passed alone)
            raise config_error(exc, origins, config, group=name) from None
    return Settings(**built)
