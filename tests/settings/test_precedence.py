"""Which value wins: flags > ``SMG_*`` variables > the config file > defaults; and which file is read:
``--config``, else ``SMG_CONFIG``."""

from __future__ import annotations

from pathlib import Path

import pytest

from smg.settings import parse_settings
from tests.settings._model import write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "smg.yaml", {"port": 1111, "api_key": ["file-a", "file-b"]})


def test_each_layer_wins_over_the_ones_below_it(config: Path) -> None:
    file_flag = ["--config", str(config)]
    env = {"SMG_PORT": "2222"}

    assert parse_settings([*file_flag, "--port", "3333"], env=env).server.port == 3333
    assert parse_settings(file_flag, env=env).server.port == 2222
    assert parse_settings(file_flag, env={}).server.port == 1111
    assert parse_settings([], env={}).server.port == 30000


def test_a_flag_wins_over_the_file_without_a_variable(config: Path) -> None:
    assert parse_settings(["--config", str(config), "--port", "3333"], env={}).server.port == 3333


def test_a_list_from_a_higher_layer_replaces_the_files_list(config: Path) -> None:
    file_flag = ["--config", str(config)]

    assert parse_settings(file_flag, env={}).auth.api_keys == ("file-a", "file-b")
    assert parse_settings(file_flag, env={"SMG_API_KEY": "env-a"}).auth.api_keys == ("env-a",)
    with_flag = parse_settings([*file_flag, "--api-key", "flag-a"], env={"SMG_API_KEY": "env-a"})
    assert with_flag.auth.api_keys == ("flag-a",)


def test_smg_config_names_the_file(config: Path) -> None:
    s = parse_settings([], env={"SMG_CONFIG": str(config)})

    assert (s.server.port, s.auth.api_keys) == (1111, ("file-a", "file-b"))


def test_config_flag_wins_over_smg_config_and_the_other_file_is_not_read(
    config: Path, tmp_path: Path
) -> None:
    other = write_config(tmp_path / "other.yaml", {"port": 4444})

    s = parse_settings(["--config", str(other)], env={"SMG_CONFIG": str(config)})

    assert s.server.port == 4444
    assert s.auth.api_keys == ()


def test_an_empty_smg_config_reads_no_file() -> None:
    assert parse_settings([], env={"SMG_CONFIG": ""}).server.port == 30000


def test_an_empty_config_file_leaves_the_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set yet\n", encoding="utf-8")

    assert parse_settings(["--config", str(empty)], env={}) == parse_settings([], env={})


def test_worker_urls_from_a_flag_and_the_files_workers_are_both_registered(tmp_path: Path) -> None:
    config = write_config(tmp_path / "smg.yaml", {"workers": ["http://127.0.0.1:9002"]})

    s = parse_settings(["--config", str(config), "--worker-urls", "http://127.0.0.1:9001"], env={})

    assert [w.url for w in s.workers.static] == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
