"""``smg --config FILE`` with a mistake starts nothing: one ``smg: error:`` line on stderr naming the
place of the mistake, exit status 2, no worker of the file contacted and no MCP server of it started."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from smg.settings.groups import MCP_SERVERS_KEY
from tests._procs import Procs, poll
from tests.settings._model import write_config
from tests.settings.conftest import gateway_env, start_config_gateway

pytestmark = pytest.mark.e2e


def _marker_server(marker: Path) -> dict[str, Any]:
    """An MCP server entry whose command leaves ``marker`` behind when it is started."""
    script = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"
    return {
        "name": "marker",
        "protocol": "stdio",
        "command": sys.executable,
        "args": ["-c", script, str(marker)],
    }


@pytest.fixture
def worker_socket() -> Iterator[socket.socket]:
    """A listening socket the file names as its worker: a gateway that contacts the worker leaves a
    connection in its backlog (nothing accepts, so nothing answers)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def _contacted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _valid(tmp_path: Path, worker: socket.socket) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": 0,
        "prometheus_host": "127.0.0.1",
        "prometheus_port": 0,
        "mcp_registry": str(tmp_path / "registry.db"),
        "workers": [f"http://127.0.0.1:{worker.getsockname()[1]}"],
        MCP_SERVERS_KEY: [_marker_server(tmp_path / "started")],
    }


def _run(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smg", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=gateway_env(**env),
        check=False,
    )


def test_the_valid_file_contacts_its_worker_and_starts_its_mcp_server(
    procs: Procs, tmp_path: Path, worker_socket: socket.socket
) -> None:
    """The control for the tests below: this file, without their mistakes, does both."""
    start_config_gateway(procs, write_config(tmp_path / "smg.yaml", _valid(tmp_path, worker_socket)))

    poll(lambda: (tmp_path / "started").exists(), timeout=30)
    poll(lambda: _contacted(worker_socket), timeout=30)


class _Mistake(NamedTuple):
    values: dict[str, Any]  # replaces the valid file's keys; entries of a list are added to its list
    env: dict[str, str]
    at: str | None  # the key whose line the message names (None: not the file's fault)
    message: str


_MISTAKES = {
    "unknown-key": _Mistake({"bogus": 1}, {}, "bogus", "unknown key 'bogus'"),
    "unknown-worker-key": _Mistake(
        {"workers": [{"url": "http://127.0.0.1:9", "apikey": "k"}]}, {}, "apikey", "workers[1]: unknown key"
    ),
    "unknown-mcp-key": _Mistake(
        {MCP_SERVERS_KEY: [{"name": "b", "protocol": "stdio", "command": "x", "bogus": 1}]},
        {},
        "bogus",
        f"{MCP_SERVERS_KEY}[1] (b): unknown key 'bogus'",
    ),
    "bad-file-value": _Mistake({"port": 99999}, {}, "port", "port: must be between 0 and 65535"),
    "bad-variable": _Mistake({}, {"SMG_QUEUE_SIZE": "-1"}, None, "SMG_QUEUE_SIZE: must be >= 0"),
}


@pytest.mark.parametrize("name", sorted(_MISTAKES))
def test_a_mistake_starts_nothing_and_is_one_line(
    tmp_path: Path, worker_socket: socket.socket, name: str
) -> None:
    mistake = _MISTAKES[name]
    values = _valid(tmp_path, worker_socket)
    for key, value in mistake.values.items():  # the valid entries first: they must not start either
        values[key] = [*values[key], *value] if isinstance(value, list) else value
    config = write_config(tmp_path / "smg.yaml", values)
    lines = config.read_text(encoding="utf-8").splitlines()
    where = ""
    if mistake.at is not None:
        where = f"{config}:{next(n for n, text in enumerate(lines, 1) if f'{mistake.at}:' in text)}: "

    done = _run(config, **mistake.env)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"smg: error: {where}{mistake.message}")
    assert not (tmp_path / "started").exists()
    assert not _contacted(worker_socket)
