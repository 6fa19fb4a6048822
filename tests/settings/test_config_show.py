"""``smg config show`` as a user runs it: every setting with its value and source (flag, variable, file,
default), the workers and MCP servers from files, and never a secret, in text and in JSON."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from smg.settings.groups import MCP_SERVERS_KEY
from smg.settings.table import settings_table
from tests.cli._run import clean_env, smg
from tests.settings._model import write_config

pytestmark = pytest.mark.e2e

SECRETS = {
    "api_key": "client-secret-1",
    "api_key_2": "client-secret-2",
    "admin_api_key": "admin-secret",
    "worker_api_key": "upstream-secret",
    "worker_entry_key": "entry-secret",
    "mcp_header": "header-secret",
    "mcp_token": "token-secret",
    "mcp_env": "env-secret",
    "flag_api_key": "flag-secret",
    "env_admin_key": "variable-secret",
}


def _config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "smg.yaml",
        {
            "policy": "least_load",
            "api_key": [SECRETS["api_key"], SECRETS["api_key_2"]],
            "admin_api_key": SECRETS["admin_api_key"],
            "worker_api_key": SECRETS["worker_api_key"],
            "worker_urls": ["http://127.0.0.1:9001"],
            "workers": [
                "http://127.0.0.1:9002",
                {"url": "http://127.0.0.1:9003", "api_key": SECRETS["worker_entry_key"]},
            ],
            MCP_SERVERS_KEY: [
                {
                    "name": "calc",
                    "protocol": "streamable",
                    "url": "http://127.0.0.1:9100/mcp",
                    "headers": {
                        "X-Api-Key": SECRETS["mcp_header"],
                        "X-Trace": "visible",
                        "X-Ref-Key": "${K}",
                    },
                    "token": SECRETS["mcp_token"],
                },
                {
                    "name": "clock",
                    "protocol": "stdio",
                    "command": sys.executable,
                    "args": ["-m", "mcp_servers.clock"],
                    "envs": {"CLOCK_SECRET": SECRETS["mcp_env"], "TZ": "UTC"},
                },
            ],
        },
    )


def _show(*args: str, **env: str) -> Any:
    done = smg("config", "show", *args, env=clean_env(**env))
    assert done.returncode == 0, done.stderr
    return done


def _rows(text: str) -> dict[str, list[str]]:
    """Plain rows (a pipe) of the settings table by setting name: [value, source]."""
    block = text.split("\n\n")[0].splitlines()
    assert re.split(r"\s{2,}", block[0].strip()) == ["setting", "value", "source"]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in block[1:])}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return _config(tmp_path)


def test_each_settings_source_is_shown_in_text(config: Path) -> None:
    done = _show("--config", str(config), "--port", "7070", SMG_QUEUE_SIZE="3")

    rows = _rows(done.stdout)

    assert rows["port"] == ["7070", "flag --port"]
    assert rows["queue_size"] == ["3", "env SMG_QUEUE_SIZE"]
    assert rows["policy"] == ["least_load", f"file {config}"]
    assert rows["host"] == ["0.0.0.0", "default"]
    assert sorted(rows) == sorted(s.key for s in settings_table())


def test_each_settings_source_is_shown_in_json(config: Path) -> None:
    done = _show("--config", str(config), "--json", "--port", "7070", SMG_QUEUE_SIZE="3")

    document = json.loads(done.stdout)
    settings = document["settings"]

    assert settings["port"] == {"value": 7070, "source": "flag --port", "flag": "--port", "env": "SMG_PORT"}
    assert (settings["queue_size"]["value"], settings["queue_size"]["source"]) == (3, "env SMG_QUEUE_SIZE")
    assert (settings["policy"]["value"], settings["policy"]["source"]) == ("least_load", f"file {config}")
    assert (settings["host"]["value"], settings["host"]["source"]) == ("0.0.0.0", "default")
    assert [(w["url"], w["source"]) for w in document["workers"]] == [
        (f"http://127.0.0.1:{port}", f"file {config}") for port in (9001, 9002, 9003)
    ]
    assert [(s["name"], s["source"]) for s in document["mcp_servers"]] == [
        ("calc", f"file {config}"),
        ("clock", f"file {config}"),
    ]


def test_smg_config_names_the_file_shown(config: Path) -> None:
    done = _show("--json", SMG_CONFIG=str(config))

    assert json.loads(done.stdout)["settings"]["policy"]["source"] == f"file {config}"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_no_secret_is_ever_printed(config: Path, as_json: bool) -> None:
    args = ["--config", str(config), "--api-key", SECRETS["flag_api_key"]]
    done = _show(*args, *(["--json"] if as_json else []), SMG_ADMIN_API_KEY=SECRETS["env_admin_key"])

    leaked = [name for name, secret in SECRETS.items() if secret in done.stdout + done.stderr]
    assert leaked == []
    if as_json:
        document = json.loads(done.stdout)
        settings = document["settings"]
        assert settings["api_key"]["value"] == ["***"]
        assert settings["admin_api_key"]["value"] == ["***"]
        assert settings["worker_api_key"]["value"] == "***"
        assert [w["api_key"] for w in document["workers"]] == ["***"] * 3
        calc, clock = document["mcp_servers"]
        assert calc["headers"] == {
            "X-Api-Key": "***",
            "X-Trace": "visible",
            "X-Ref-Key": "${K}",
            "Authorization": "***",
        }
        assert clock["env"] == {"CLOCK_SECRET": "***", "TZ": "UTC"}
    else:
        rows = _rows(done.stdout)
        assert rows["api_key"] == ["***", "flag --api-key"]
        assert rows["admin_api_key"] == ["***", "env SMG_ADMIN_API_KEY"]
        assert rows["worker_api_key"] == ["***", f"file {config}"]
        assert "X-Trace=visible" in done.stdout
        assert "X-Ref-Key=${K}" in done.stdout


def test_the_mcp_yaml_keeps_working_beside_the_config_file(config: Path, tmp_path: Path) -> None:
    server = {
        "name": "notes",
        "protocol": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.notes"],
    }
    mcp_yaml = write_config(tmp_path / "mcp.yaml", {"servers": [server]})

    done = _show("--config", str(config), "--mcp-config-path", str(mcp_yaml), "--json")

    servers = [(s["name"], s["source"]) for s in json.loads(done.stdout)["mcp_servers"]]
    assert servers == [("notes", f"file {mcp_yaml}"), ("calc", f"file {config}"), ("clock", f"file {config}")]


def test_a_server_defined_in_both_files_is_an_error_naming_both(config: Path, tmp_path: Path) -> None:
    server = {"name": "calc", "protocol": "stdio", "command": sys.executable}
    mcp_yaml = write_config(tmp_path / "mcp.yaml", {"servers": [server]})

    done = smg("config", "show", "--config", str(config), "--mcp-config-path", str(mcp_yaml))

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"smg: error: {config}: {MCP_SERVERS_KEY}: 'calc' is also defined in {mcp_yaml}"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port: 80\nbogus: 1\n", ":2: unknown key 'bogus'"),
        (f"{MCP_SERVERS_KEY}:\n  - name: a\n    protocol: stdio\n    command: x\n    bogus: 1\n", ":5: "),
    ],
    ids=["setting", "mcp-server"],
)
def test_an_unknown_key_stops_config_show_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "smg.yaml"
    path.write_text(text, encoding="utf-8")

    done = smg("config", "show", "--config", str(path))

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"smg: error: {path}{expected}")
    assert "'bogus'" in done.stderr
