"""The settings table, derived from the groups' declarations: for each operator setting its flag,
``SMG_*`` variable, config file key, help, default and kind; and the config file's list sections."""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from smg.settings.fields import FileSection, Flag, Internal
from smg.settings.groups import Settings


@dataclasses.dataclass(frozen=True)
class Setting:
    """One operator setting: group ``group``'s field ``field``, read as declared by ``flag``."""

    group: str
    field: str
    flag: Flag
    info: FieldInfo

    @property
    def key(self) -> str:
        """The config file's key, and the name of the setting everywhere else (``max_payload_size``)."""
        return self.flag.key

    @property
    def option(self) -> str:
        return f"--{self.flag.name}"

    @property
    def env(self) -> str:
        return self.flag.env

    @property
    def help(self) -> str:
        return self.info.description or ""

    @property
    def default(self) -> Any:
        """The default as the flag reads it (a switch that turns its field off is off by default)."""
        return (not self.info.default) if self.flag.invert else self.info.default

    @property
    def switch(self) -> bool:
        return self.info.annotation is bool

    @property
    def many(self) -> bool:
        return get_origin(self.info.annotation) is tuple

    @property
    def secret(self) -> bool:
        return self.info.repr is False

    @property
    def choices(self) -> tuple[str, ...] | None:
        return get_args(self.info.annotation) if get_origin(self.info.annotation) is Literal else None

    @property
    def annotation(self) -> Any:
        """The field's type with every check declared on it (bounds, validators)."""
        return Annotated[(self.info.annotation, *self.info.metadata)]

    def bound(self, name: str) -> Any:
        """The field's bound ``name`` (``"ge"``, ``"le"``...), None when it has none."""
        for item in self.info.metadata:
            if hasattr(item, name):
                return getattr(item, name)
        return None


@dataclasses.dataclass(frozen=True)
class Section:
    """A config-file-only list: group ``group``'s field ``field`` is read from the top-level ``key``."""

    group: str
    field: str
    section: FileSection
    info: FieldInfo

    @property
    def key(self) -> str:
        return self.section.key

    @property
    def annotation(self) -> Any:
        return Annotated[(self.info.annotation, *self.info.metadata)]


def _fields(group: type[Any]) -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = group.__pydantic_fields__
    return fields


def _marker(info: FieldInfo) -> Flag | FileSection | Internal | None:
    found = [m for m in info.metadata if isinstance(m, Flag | FileSection | Internal)]
    return found[0] if found else None


def groups() -> dict[str, type[Any]]:
    """Settings' groups by field name, in declaration order."""
    return {
        name: info.annotation for name, info in _fields(Settings).items() if isinstance(info.annotation, type)
    }


@functools.cache
def settings_table() -> tuple[Setting, ...]:
    """Every operator setting, in declaration order (group by group)."""
    out = []
    for group, cls in groups().items():
        for name, info in _fields(cls).items():
            marker = _marker(info)
            if isinstance(marker, Flag):
                out.append(Setting(group, name, marker, info))
    return tuple(out)


@functools.cache
def sections() -> tuple[Section, ...]:
    """The config file's list sections (workers, MCP servers)."""
    out = []
    for group, cls in groups().items():
        for name, info in _fields(cls).items():
            marker = _marker(info)
            if isinstance(marker, FileSection):
                out.append(Section(group, name, marker, info))
    return tuple(out)


def undeclared_fields() -> list[str]:
    """``group.field`` of every field that says neither where it is read from nor that it is internal
    (an empty list, which a test pins)."""
    return [
        f"{group}.{name}"
        for group, cls in groups().items()
        for name, info in _fields(cls).items()
        if _marker(info) is None
    ]


def flag_table() -> tuple[tuple[str, str, str, Any], ...]:
    """(flag, env var, help, default) for every gateway flag; the configuration doc is checked against it."""
    return tuple((s.option, s.env, s.help, s.default) for s in settings_table())
