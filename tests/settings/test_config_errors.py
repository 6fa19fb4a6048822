"""A bad config file, variable or flag is one `ConfigError` naming where the value came from: the file and
line (and the unknown key), the ``SMG_*`` variable, or the flag. A secret's value is never echoed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from smg.errors import ConfigError
from smg.mcp.errors import InvalidMcpConfig
from smg.mcp.registry.yaml_config import static_servers
from smg.settings import parse_settings
from smg.settings.groups import MCP_SERVERS_KEY


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(["--config", str(path), *argv], env=env or {})
    assert "\n" not in info.value.message
    return info.value.message


def test_an_unknown_top_level_key_names_the_key_the_file_and_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "port: 8080\npolicy: round_robin\nbogus: 1\n")

    message = _error(path)

    assert message.startswith(f"{path}:3: unknown key 'bogus'")


def test_a_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "queue_sise: 4\n")

    assert _error(path) == f"{path}:1: unknown key 'queue_sise'; did you mean 'queue_size'?"


def test_a_flag_name_with_dashes_is_not_a_file_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "max-payload-size: 4096\n")

    assert _error(path).startswith(
        f"{path}:1: unknown key 'max-payload-size'; did you mean 'max_payload_size'"
    )


def test_an_unknown_key_in_a_worker_entry_names_the_key_the_file_and_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "workers:\n  - http://127.0.0.1:9001\n  - url: http://127.0.0.1:9002\n    apikey: k\n"
    )

    message = _error(path)

    assert message.startswith(f"{path}:4: workers[1]")
    assert "'apikey'" in message
    assert "k\n" not in message


def test_an_unknown_key_in_an_mcp_server_names_the_key_the_file_and_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"{MCP_SERVERS_KEY}:\n"
        f"  - name: clock\n    protocol: stdio\n    command: {sys.executable}\n"
        "  - name: calc\n    protocol: streamable\n    url: http://127.0.0.1:9/mcp\n    header: {}\n",
    )
    mcp = parse_settings(["--config", str(path)], env={}).mcp  # the list is parsed when servers start

    with pytest.raises(InvalidMcpConfig) as info:
        static_servers(mcp.config_path, mcp.servers_file, key=MCP_SERVERS_KEY)

    assert info.value.message.startswith(f"{path}:8: {MCP_SERVERS_KEY}[1] (calc)")
    assert "unknown key 'header'" in info.value.message


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("host: 127.0.0.1\nport: 99999\n", 2, "port: must be between 0 and 65535"),
        ("policy: fastest\n", 1, "policy: 'fastest' is not one of round_robin, random"),
        ("# limits\nqueue_size: -1\n", 2, "queue_size: must be >= 0"),
        ("retry_max_retries: 0\n", 1, "retry_max_retries: must be >= 1"),
        ("disable_retries: maybe\n", 1, "disable_retries: expected a boolean"),
        ("retry_jitter_factor: .nan\n", 1, "retry_jitter_factor: must be a finite number"),
        ("workers:\n  - http://127.0.0.1:9001\n  - ftp://x\n", 3, "workers[1]: invalid URL 'ftp://x'"),
        ("worker_urls: [http://127.0.0.1:9]\nworkers: [http://127.0.0.1:9]\n", 2, "workers: worker"),
    ],
    ids=["port", "policy", "queue_size", "retries", "switch", "nan", "worker-url", "worker-twice"],
)
def test_a_bad_value_in_the_file_names_the_file_and_line(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = _write(tmp_path, text)

    assert _error(path).startswith(f"{path}:{line}: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("admin_api_key: [{nested: hunter2}]\n", ":1: admin_api_key[0]: invalid value"),
        ("api_key: {hunter2: 1}\n", ":1: api_key: invalid value"),
        ("worker_api_key: [hunter2]\n", ":1: worker_api_key: invalid value"),
        ("workers:\n  - url: http://127.0.0.1:9\n    api_key: [hunter2]\n", ":3: workers[0]: api_key"),
    ],
    ids=["admin_api_key", "api_key", "worker_api_key", "worker-entry"],
)
def test_a_secret_from_the_file_is_not_echoed_in_an_error(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)

    message = _error(path)

    assert message.startswith(f"{path}{expected}")
    assert "hunter2" not in message


def test_a_bad_variable_is_named_even_when_the_file_sets_the_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, "port: 8080\n")

    assert _error(path, env={"SMG_PORT": "abc"}) == "SMG_PORT: invalid value 'abc'"
    assert _error(path, env={"SMG_QUEUE_SIZE": "-3"}) == "SMG_QUEUE_SIZE: must be >= 0"


def test_a_bad_flag_is_named_even_when_the_file_and_a_variable_set_the_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, "port: 8080\n")

    assert _error(path, "--port", "70000", env={"SMG_PORT": "9090"}) == "--port: must be between 0 and 65535"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port: [\n", ":2: not valid YAML"),
        ("- port\n", ": the top level must be a mapping"),
        ("1: x\n", ": setting names must be text"),
    ],
    ids=["syntax", "list", "number-key"],
)
def test_a_file_that_is_not_a_mapping_of_settings_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)

    assert _error(path).startswith(f"{path}{expected}")


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as info:
        parse_settings([], env={"SMG_CONFIG": str(missing)})

    assert info.value.message == f"{missing}: cannot read the config file (No such file or directory)"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('api_key: ["${CLIENT_KEY}"]\n', ":1: api_key"),
        ('admin_api_key: "${ADMIN_KEY}"\n', ":1: admin_api_key"),
        ('worker_api_key: "${UPSTREAM}"\n', ":1: worker_api_key"),
        ('workers:\n  - url: http://127.0.0.1:8000\n    api_key: "${UPSTREAM}"\n', ":3: workers"),
    ],
)
def test_a_key_written_as_a_variable_reference_is_refused_not_taken_literally(
    tmp_path: Path, text: str, where: str
) -> None:
    # Only MCP headers, env and tokens expand ${VAR}: a gateway key "${CLIENT_KEY}" would be guessable.
    message = _error(_write(tmp_path, text))

    assert message.startswith(f"{tmp_path / 'smg.yaml'}{where}")
    assert "${VAR} reference is not expanded" in message


def test_a_blank_worker_key_from_a_variable_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings([], env={"SMG_WORKER_API_KEY": " "})

    assert info.value.message.startswith("SMG_WORKER_API_KEY: ")
