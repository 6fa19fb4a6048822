"""A client nobody here wrote: the MCP Inspector's CLI mode (npm ``@modelcontextprotocol/inspector``,
pinned) lists and calls the tools of the gateway's MCP endpoint, with a data key. Skipped, with the
reason, where npx is missing or the package cannot be fetched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mcp_servers.faults import BUILTIN_TOOLS
from smg.mcp.registry.naming import exposed_tool_name
from tests._procs import Procs
from tests.mcp.endpoint._stack import start

pytestmark = pytest.mark.e2e

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
_FETCH_SECS = 300  # the first run downloads the package into npm's cache


def _npx(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    assert npx is not None
    # The CLI keeps state in the home directory: the test's own, with npm's cache where it was.
    cache = os.environ.get("NPM_CONFIG_CACHE") or str(Path.home() / ".npm")
    env = {**os.environ, "HOME": str(tmp_path), "NPM_CONFIG_CACHE": cache}
    return subprocess.run(
        [npx, "-y", INSPECTOR, *args], capture_output=True, text=True, timeout=_FETCH_SECS, env=env
    )


@pytest.fixture
def inspector(tmp_path: Path) -> None:
    if shutil.which("npx") is None:
        pytest.skip("npx (Node.js) is not installed: the MCP Inspector CLI cannot run")
    try:
        fetched = _npx(tmp_path, "--cli", "--version")
    except subprocess.TimeoutExpired:
        pytest.skip(f"npx could not fetch {INSPECTOR} within {_FETCH_SECS} s")
    if fetched.returncode != 0:
        pytest.skip(f"npx could not fetch {INSPECTOR}: {fetched.stderr.strip()[-500:]}")


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_mcp_inspector_cli_lists_and_calls_tools_through_the_endpoint(
    inspector: None, procs: Procs, tmp_path: Path
) -> None:
    stack = start(procs, tmp_path, "--api-key", "data-key")
    target = [stack.mcp, "--transport", "http", "--header", "Authorization: Bearer data-key"]

    listed = _json(_npx(tmp_path, "--cli", *target, "--method", "tools/list"))
    called = _json(
        _npx(
            tmp_path,
            "--cli",
            *target,
            "--method",
            "tools/call",
            "--tool-name",
            "faults__echo",
            "--tool-arg",
            "text=from the inspector",
        )
    )
    refused = _npx(tmp_path, "--cli", stack.mcp, "--transport", "http", "--method", "tools/list")

    names = {tool["name"] for tool in listed["tools"]}
    assert names == {exposed_tool_name("faults", name) for name in BUILTIN_TOOLS}
    (echo,) = (tool for tool in listed["tools"] if tool["name"] == "faults__echo")
    assert echo["annotations"]["readOnlyHint"] is True
    assert echo["inputSchema"]["required"] == ["text"]
    assert called == {"content": [{"type": "text", "text": "from the inspector"}], "isError": False}
    assert refused.returncode != 0  # no key: the gateway answers 401
    assert stack.gw.metric("smg_mcp_tool_calls_total", tool_name="echo", caller="mcp_client") == 1
