"""A settings group validates however it is built: directly, by ``dataclasses.replace`` or from flags, it
refuses the same values (pydantic's ValidationError, a ValueError)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from smg.errors import ConfigError
from smg.settings import (
    RetrySettings,
    ServerSettings,
    Settings,
    WorkerEntry,
    WorkerSettings,
    parse_settings,
)
from smg.settings.table import Setting, groups, settings_table

# Text the checks of some field refuse: blank, a path without its slash, a URL scheme a worker cannot
# have, a host pattern that is no host, a choice no Literal has.
_BAD_TEXT = (" ", "health", "ftp://x", "bad host!", "no-such-choice", "maybe")


def _bad_numbers(setting: Setting) -> list[float]:
    out: list[float] = []
    for name, step in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
        bound = setting.bound(name)
        if bound is not None:
            out.append(bound + step)
    return out


def _direct(setting: Setting, text: str | float) -> Any:
    """The value as code would pass it to the group's constructor."""
    return (text,) if setting.many else text


def _refused_by_flag(setting: Setting, value: str | float) -> bool:
    argv = [setting.option] if setting.switch else [setting.option, str(value)]
    env = {setting.env: str(value)}  # a switch takes its value from the variable
    try:
        parse_settings([] if setting.switch else argv, env=env if setting.switch else {})
    except ConfigError:
        return True
    return False


def _refused_directly(setting: Setting, value: Any) -> bool:
    cls = groups()[setting.group]
    try:
        cls(**{setting.field: value})
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("setting", settings_table(), ids=lambda s: s.key)
def test_direct_construction_refuses_what_the_flag_refuses(setting: Setting) -> None:
    numeric = setting.bound("ge") is not None or setting.bound("gt") is not None
    candidates: list[str | float] = [*_BAD_TEXT, *_bad_numbers(setting)]

    for value in candidates:
        by_flag = _refused_by_flag(setting, value)
        direct = _refused_directly(setting, _direct(setting, value))
        assert by_flag == direct, (setting.key, value)
    if numeric or setting.choices or setting.switch:
        assert any(_refused_directly(setting, _direct(setting, v)) for v in candidates), setting.key


@pytest.mark.parametrize("setting", settings_table(), ids=lambda s: s.key)
def test_replace_validates_too(setting: Setting) -> None:
    for value in _bad_numbers(setting):
        group = getattr(Settings(), setting.group)
        with pytest.raises(ValueError):
            dataclasses.replace(group, **{setting.field: value})


def test_zero_attempts_are_refused_however_the_retry_settings_are_built() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetrySettings(max_retries=0)
    with pytest.raises(ValueError, match="max_retries"):
        dataclasses.replace(RetrySettings(), max_retries=0)
    with pytest.raises(ConfigError):
        parse_settings(["--retry-max-retries", "0"], env={})


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_floats_must_be_finite(value: float) -> None:
    with pytest.raises(ValueError):
        RetrySettings(initial_backoff_ms=value)


def test_a_group_takes_no_unknown_field() -> None:
    with pytest.raises(ValueError, match="bogus"):
        ServerSettings(bogus=1)  # type: ignore[call-arg]


def test_settings_take_groups_only() -> None:
    with pytest.raises(ValueError):
        Settings(server="127.0.0.1")  # type: ignore[arg-type]


def test_a_worker_entry_is_checked_like_a_worker_file_entry() -> None:
    with pytest.raises(ValueError, match="invalid URL"):
        WorkerEntry("ftp://x")
    with pytest.raises(ValueError):
        WorkerEntry("http://user:pw@127.0.0.1:9")
    with pytest.raises(ValueError):
        WorkerEntry("http://127.0.0.1:9", api_key=" ")
    assert WorkerEntry("http://127.0.0.1:9/").url == "http://127.0.0.1:9"


def test_a_worker_listed_twice_is_refused_however_the_workers_are_built() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        WorkerSettings(urls=("http://127.0.0.1:9",), entries=(WorkerEntry("http://127.0.0.1:9"),))
    with pytest.raises(ValueError, match="listed twice"):
        WorkerSettings(entries=("http://127.0.0.1:9", {"url": "http://127.0.0.1:9/"}))  # type: ignore[arg-type]


def test_secrets_are_not_in_the_repr_of_a_group_built_directly() -> None:
    workers = WorkerSettings(
        api_key="up-secret", entries=(WorkerEntry("http://127.0.0.1:9", "entry-secret"),)
    )

    text = repr(Settings(workers=workers))

    assert "up-secret" not in text
    assert "entry-secret" not in text
