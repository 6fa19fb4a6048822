"""The ``smg`` command line: no abbreviated options, and one wording for a gateway that cannot be reached."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from smg.cli.main import build_parser, main
from smg.errors import ConfigError
from smg.settings import parse_settings
from tests.cli._run import smg


@pytest.mark.parametrize(
    "argv",
    [
        ["launch", "--worker-url", "http://127.0.0.1:8000"],
        ["launch", "--mcp-config", "mcp.yaml"],
        ["mcp", "list", "--jso"],
        ["mcp", "--gate", "http://127.0.0.1:1", "list"],
        ["mcp", "tools", "--ref"],
        ["workers", "--gate", "http://127.0.0.1:1", "list"],
        ["workers", "add", "http://127.0.0.1:8000", "--api", "sk-x"],
    ],
)
def test_an_abbreviated_option_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        build_parser().parse_args(argv)


def test_an_abbreviated_option_after_the_server_name_of_mcp_add_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["mcp", "add", "x", "--dry", "--url", "http://127.0.0.1:1/mcp"]) == 2
    assert capsys.readouterr().err == "smg: error: unrecognized option '--dry'\n"


def test_gateway_settings_refuse_an_abbreviated_flag() -> None:
    with pytest.raises(ConfigError):
        parse_settings(["--worker-url", "http://127.0.0.1:8000"], env={})


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.e2e
def test_every_subcommand_words_an_unreachable_gateway_the_same(closed_port_url: str) -> None:
    expected = f"smg: error: cannot reach the gateway at {closed_port_url} (connection refused)\n"
    for argv in (
        ["workers", "--gateway", closed_port_url, "list"],
        ["mcp", "--gateway", closed_port_url, "list"],
        ["mcp", "tools", "--gateway", closed_port_url],
    ):
        done = smg(*argv)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", expected), argv


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv",
    [
        ["smg.testing.worker", "--port", "0", "--mod", "other-model"],
        ["mcp_servers.calc", "--trans", "stdio"],
    ],
)
def test_the_shipped_helper_programs_refuse_abbreviated_options_too(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 2
    assert "unrecognized arguments" in done.stderr
