"""Every setting of the model is read from its flag, its ``SMG_*`` variable and its config file key, and all
three reach the same field. The settings are enumerated from the model, not from a list here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from smg.settings import Settings, parse_settings
from smg.settings.fields import FileSection, Flag, Internal
from smg.settings.table import Setting, sections, settings_table, undeclared_fields
from tests.settings._model import field_value, from_file, from_flags, sample, write_config

SETTINGS = {s.key: s for s in settings_table()}

# The flag names smg shares with SMG (the Rust gateway) and has always accepted: renaming one breaks
# command lines and deployment files that work today.
COMPATIBLE_FLAGS = (
    "--host", "--port", "--worker-urls", "--worker-file", "--worker-api-key", "--policy",
    "--prometheus-host", "--prometheus-port", "--retry-max-retries", "--retry-initial-backoff-ms",
    "--retry-max-backoff-ms", "--retry-backoff-multiplier", "--retry-jitter-factor", "--disable-retries",
    "--cb-failure-threshold", "--cb-success-threshold", "--cb-timeout-duration-secs",
    "--disable-circuit-breaker", "--health-check-interval-secs", "--health-check-timeout-secs",
    "--health-failure-threshold", "--health-success-threshold", "--health-check-endpoint",
    "--disable-health-check", "--max-concurrent-requests", "--queue-size", "--queue-timeout-secs",
    "--request-timeout-secs", "--max-payload-size", "--max-request-head-bytes",
    "--request-head-timeout-secs", "--api-key", "--admin-api-key", "--log-level", "--log-json",
    "--mcp-registry", "--mcp-config-path", "--mcp-max-iterations", "--mcp-max-tool-calls",
    "--mcp-loop-timeout-secs", "--mcp-max-repeated-calls", "--mcp-tools-ttl-secs",
    "--max-messages-per-request", "--max-tools-per-request", "--shutdown-grace-period-secs",
    "--mcp-allowed-hosts", "--mcp-max-tool-output-bytes", "--enable-trace", "--otlp-traces-endpoint",
)  # fmt: skip


def _group_fields() -> list[tuple[str, str, tuple[object, ...]]]:
    """(group, field, metadata) of every field of every group, read from the classes themselves."""
    out = []
    for group in dataclasses.fields(Settings):
        cls: Any = type(getattr(Settings(), group.name))  # a pydantic dataclass
        for name, info in cls.__pydantic_fields__.items():
            out.append((group.name, name, tuple(info.metadata)))
    return out


def test_every_field_of_every_group_says_where_it_is_read_from() -> None:
    assert undeclared_fields() == []
    table = {(s.group, s.field) for s in settings_table()} | {(s.group, s.field) for s in sections()}
    for group, name, metadata in _group_fields():
        markers = [m for m in metadata if isinstance(m, Flag | FileSection | Internal)]
        assert len(markers) == 1, f"{group}.{name}"
        if not isinstance(markers[0], Internal):
            assert (group, name) in table, f"{group}.{name}"


def test_flag_variable_and_file_key_are_one_name() -> None:
    assert len(SETTINGS) == len(settings_table()), "two settings share a file key"
    for s in settings_table():
        assert s.option == "--" + s.key.replace("_", "-")
        assert s.env == "SMG_" + s.key.upper()


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_the_flag_sets_the_setting(key: str) -> None:
    s = SETTINGS[key]
    value = sample(s)

    settings = from_flags([s.option, *value.argv])

    assert field_value(settings, s) == value.expected
    assert field_value(from_flags([]), s) != value.expected


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_the_variable_sets_the_setting(key: str) -> None:
    s = SETTINGS[key]
    value = sample(s)

    settings = from_flags([], env={s.env: value.env})

    assert field_value(settings, s) == value.expected


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_the_config_file_key_sets_the_setting(key: str, tmp_path: Path) -> None:
    s = SETTINGS[key]
    value = sample(s)

    settings = from_file(write_config(tmp_path / "smg.yaml", {key: value.file}))

    assert field_value(settings, s) == value.expected


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_flag_variable_and_file_give_the_same_settings(key: str, tmp_path: Path) -> None:
    s = SETTINGS[key]
    value = sample(s)

    by_flag = from_flags([s.option, *value.argv])
    by_env = from_flags([], env={s.env: value.env})
    by_file = from_file(write_config(tmp_path / "smg.yaml", {key: value.file}))

    assert by_flag == by_env == by_file


def test_every_compatible_flag_name_is_still_a_setting() -> None:
    assert sorted(set(COMPATIBLE_FLAGS) - {s.option for s in settings_table()}) == []


@pytest.mark.parametrize("flag", COMPATIBLE_FLAGS)
def test_every_compatible_flag_is_accepted_on_the_command_line(flag: str) -> None:
    s: Setting = next(s for s in settings_table() if s.option == flag)
    value = sample(s)

    settings = parse_settings([flag, *value.argv], env={})

    assert field_value(settings, s) == value.expected
