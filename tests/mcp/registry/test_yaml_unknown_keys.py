"""An --mcp-config-path file in another tool's shape, or with a mistyped key, is refused naming the file,
the line and the key, at start-up (the real command) and when parsed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smg.mcp import InvalidMcpConfig, load_mcp_config
from smg.testing.processes import spawn, stop

LITELLM = """\
model_list: []
mcp_servers:
  time:
    url: http://127.0.0.1:8000/mcp
    transport: http
"""
TYPO = """\
servers:
  - name: clock
    protocol: stdio
    command: python
    argz: [-m, mcp_servers.clock]
"""


def test_a_litellm_shaped_file_is_refused_naming_the_key_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "litellm.yaml"
    path.write_text(LITELLM, encoding="utf-8")
    with pytest.raises(InvalidMcpConfig) as caught:
        load_mcp_config(path)
    assert caught.value.param == "mcp_servers"
    assert f"{path}:2: " in caught.value.message
    assert "'mcp_servers'" in caught.value.message and "'model_list'" in caught.value.message


def test_a_mistyped_key_of_a_server_is_refused_naming_the_server_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp.yaml"
    path.write_text(TYPO, encoding="utf-8")
    with pytest.raises(InvalidMcpConfig) as caught:
        load_mcp_config(path)
    assert caught.value.param == "argz"
    assert caught.value.message.startswith(f"{path}:5: servers[0] (clock): ")


def test_the_ignored_sections_of_smgs_format_are_still_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mcp.yaml"
    path.write_text(
        "proxy: {http: http://proxy:8080}\npool: {max_connections: 10}\ninventory: {tool_ttl: 60}\n"
        "warmup: []\npolicy: {default: allow}\nservers: []\n",
        encoding="utf-8",
    )
    assert load_mcp_config(path) == []


@pytest.mark.e2e
def test_the_gateway_refuses_to_start_with_a_litellm_shaped_mcp_config(tmp_path: Path) -> None:
    path = tmp_path / "litellm.yaml"
    path.write_text(LITELLM, encoding="utf-8")
    argv = ["--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0", "--mcp-config-path", str(path)]
    argv += ["--mcp-registry", str(tmp_path / "r.db")]
    proc = spawn([sys.executable, "-m", "smg", *argv], stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        assert proc.wait(timeout=60) == 2
        err = proc.stderr.read()
    finally:
        stop(proc)
        proc.stderr.close()
    assert err.startswith(f"smg: error: {path}:2: unknown top-level keys 'mcp_servers', 'model_list'")
