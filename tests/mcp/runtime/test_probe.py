"""One-shot probes: list and call against a real server; unreachable servers and missing secrets."""

from __future__ import annotations

import pytest

from smg.mcp.errors import McpServerUnreachable, UnresolvedSecret
from smg.mcp.registry.config import ServerSpec
from smg.mcp.runtime.probe import call_once, probe_tools
from tests.mcp.runtime._support import free_port, http_spec, stdio_spec
from tests.mcp_servers._helpers import Launcher

pytestmark = pytest.mark.e2e


async def test_probe_lists_tools_and_call_once_calls_one(launch: Launcher) -> None:
    server = await launch("clock")
    tools = await probe_tools(http_spec("clock", server.url, headers={"X-Test": "1"}), timeout=30)
    outcome = await call_once(stdio_spec("calc"), "evaluate", {"expression": "2 ** 10"}, timeout=30)
    assert "now" in {tool.name for tool in tools}
    assert (outcome.status, outcome.text) == ("ok", "1024")


async def test_probe_of_an_unreachable_server_raises_unreachable() -> None:
    with pytest.raises(McpServerUnreachable) as caught:
        await probe_tools(http_spec("down", f"http://127.0.0.1:{free_port()}/mcp"), timeout=5)
    assert caught.value.code == "mcp_server_unreachable" and caught.value.status == 502
    missing = ServerSpec(name="broken", transport="stdio", command="/nonexistent/server")
    with pytest.raises(McpServerUnreachable):
        await probe_tools(missing, timeout=5)


async def test_probe_names_an_unset_secret_variable() -> None:
    spec = http_spec(
        "auth", "http://127.0.0.1:1/mcp", headers={"Authorization": "Bearer ${SMG_TEST_NO_SUCH}"}
    )
    with pytest.raises(UnresolvedSecret) as caught:
        await probe_tools(spec, timeout=5, environ={})
    assert caught.value.variable == "SMG_TEST_NO_SUCH"
