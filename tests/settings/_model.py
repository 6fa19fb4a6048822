"""Values for the settings of the model, derived from each field's type and checks, and helpers that read
settings the three ways an operator writes them (flags, ``SMG_*`` variables, the config file)."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import TypeAdapter, ValidationError

from smg.settings import Settings, parse_settings
from smg.settings.table import Setting

# Candidate values per kind, tried in order; the first one the field accepts and that differs from the
# default is used. They are generic on purpose: a field whose checks refuse all of them fails the test.
_TEXT = ("alt-{key}", "/alt-{key}")
_LISTS = (("alpha", "beta"), ("http://127.0.0.1:8001", "http://127.0.0.1:8002"))


@dataclass(frozen=True)
class Sample:
    """A valid, non-default value of one setting, written the three ways, and the field value it gives."""

    argv: tuple[str, ...]  # after the flag (empty for a switch)
    env: str
    file: Any  # as a YAML value
    expected: Any  # the group field's value


def field_value(settings: Settings, setting: Setting) -> Any:
    return getattr(getattr(settings, setting.group), setting.field)


def _base(annotation: Any) -> Any:
    """``str`` for ``Annotated[str, ...] | None``; the annotation itself otherwise."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) == 1:
            return _base(kinds[0])
    if get_origin(annotation) is Annotated:
        return get_args(annotation)[0]
    return annotation


def _numbers(setting: Setting, kind: type) -> list[Any]:
    default = setting.info.default
    low = setting.bound("ge") if setting.bound("ge") is not None else setting.bound("gt")
    high = setting.bound("le") if setting.bound("le") is not None else setting.bound("lt")
    found = [default * 2 + 3, default + 1]
    if low is not None and high is not None:
        found.append((low + high) / 2)
    found += [b for b in (low, high) if b is not None]
    return [kind(v) for v in found]


def _candidates(setting: Setting) -> list[Any]:
    if setting.choices:
        return list(setting.choices)
    if setting.many:
        return [tuple(v) for v in _LISTS]
    kind = _base(setting.info.annotation)
    if kind in (int, float):
        return _numbers(setting, kind)
    if kind is str:
        return [t.format(key=setting.key) for t in _TEXT]
    raise AssertionError(f"no sample values for {setting.key} of type {setting.info.annotation!r}")


def sample(setting: Setting) -> Sample:
    """A valid value of ``setting`` other than its default (raises AssertionError when there is none)."""
    if setting.switch:  # the bare flag; the field is the opposite of its default either way
        return Sample((), "true", True, not setting.info.default)
    adapter: TypeAdapter[Any] = TypeAdapter(setting.annotation)
    for candidate in _candidates(setting):
        try:
            value = adapter.validate_python(candidate)
        except ValidationError:
            continue
        if value == setting.info.default:
            continue
        if isinstance(candidate, tuple):
            return Sample(tuple(candidate), ",".join(candidate), list(candidate), value)
        return Sample((str(candidate),), str(candidate), candidate, value)
    raise AssertionError(f"no valid non-default value found for {setting.key}")


def write_config(path: Path, values: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(values), sort_keys=False), encoding="utf-8")
    return path


def from_file(path: Path, *argv: str, env: Mapping[str, str] | None = None) -> Settings:
    """Settings of ``smg --config PATH ARGV`` with the variables ``env`` (none by default)."""
    return parse_settings(["--config", str(path), *argv], env=dict(env or {}))


def from_flags(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    return parse_settings(list(argv), env=dict(env or {}))
