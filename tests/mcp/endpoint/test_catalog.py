"""The endpoint's names: tools and prompts as the tool loop names them, a name collision leaving the
second name out instead of failing the whole list, and resource URIs wrapped and unwrapped exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from smg.keys.scope import UNRESTRICTED
from smg.mcp.control import McpControl
from smg.mcp.endpoint.catalog import View, unwrap_uri, wrap_uri
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.registry.store import SqliteRegistry
from smg.mcp.runtime.pool import McpPool


@pytest.fixture
def control(tmp_path: Path) -> McpControl:
    return McpControl(SqliteRegistry(str(tmp_path / "registry.db")), McpPool())


def test_aggregated_names_are_the_tool_loop_s_and_a_collision_leaves_only_the_second_out(
    control: McpControl, caplog: pytest.LogCaptureFixture
) -> None:
    long = "t" * 70
    names = View(UNRESTRICTED).names(control, {"s": ["a.b", "a_b", long], "u": ["x"]})

    assert names == {
        "s__a_b": ("s", "a.b"),  # "a_b" would be offered under the same name: left out, and logged
        exposed_tool_name("s", long): ("s", long),
        "u__x": ("u", "x"),
    }
    assert "'a_b' of MCP server 's'" in caplog.text


def test_a_server_s_own_endpoint_keeps_its_names(control: McpControl) -> None:
    names = View(UNRESTRICTED, only="s").names(control, {"s": ["a.b", "t" * 70]})

    assert names == {"a.b": ("s", "a.b"), "t" * 70: ("s", "t" * 70)}


@pytest.mark.parametrize("uri", ["notes://all", "file:///etc/x", "https://h/p?q=1#f", "smg://x/y"])
def test_resource_uris_round_trip(uri: str) -> None:
    wrapped = wrap_uri("notes", uri)

    assert wrapped == f"smg://notes/{uri}"
    assert unwrap_uri(wrapped) == ("notes", uri)


@pytest.mark.parametrize("uri", ["notes://all", "smg://", "smg://notes", "smg://notes/", "smg:///x"])
def test_other_uris_are_not_the_endpoint_s(uri: str) -> None:
    assert unwrap_uri(uri) is None
