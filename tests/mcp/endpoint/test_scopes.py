"""A stored key's scope decides what an MCP client of the endpoint sees and may call: servers, tools,
prompts and resources outside it do not exist for that client; real processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mcp import MCPError

from mcp_servers.faults import BUILTIN_TOOLS
from smg.mcp.registry.naming import exposed_tool_name
from tests._procs import Procs
from tests.mcp.endpoint._stack import add_server, mcp_client, start

pytestmark = pytest.mark.e2e


def _key(url: str, **scope: object) -> str:
    created = httpx.post(url + "/keys", json=scope, timeout=30)
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


async def test_a_key_scoped_to_one_server_sees_and_calls_only_that_server(
    procs: Procs, tmp_path: Path
) -> None:
    stack = start(procs, tmp_path)
    _, other = procs.mcp_faults()
    add_server(stack.gw, "other", other)
    key = _key(stack.gw.url, name="other-only", servers=["other"])

    async with mcp_client(stack.mcp, key=key) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        prompts = [prompt.name for prompt in (await client.list_prompts()).prompts]
        resources = [resource.uri for resource in (await client.list_resources()).resources]
        echoed = await client.call_tool("other__echo", {"text": "allowed"})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("faults__echo", {"text": "forbidden"})
        with pytest.raises(MCPError, match="Unknown prompt"):
            await client.get_prompt("faults__greet", {"name": "x"})
        with pytest.raises(MCPError, match="no MCP server 'faults'"):
            await client.read_resource("smg://faults/faults://about")
    async with mcp_client(stack.gw.url + "/mcp/scoped/other", key=key) as client:
        own = {tool.name for tool in (await client.list_tools()).tools}
    async with httpx.AsyncClient(timeout=30) as http:
        forbidden = await http.post(
            stack.gw.url + "/mcp/scoped/faults", json={}, headers={"Authorization": f"Bearer {key}"}
        )

    assert tools == {exposed_tool_name("other", name) for name in BUILTIN_TOOLS}
    assert prompts == ["other__greet"]
    assert resources == ["smg://other/faults://about"]
    assert not echoed.is_error
    assert own == BUILTIN_TOOLS
    assert forbidden.status_code == 403
    assert forbidden.headers["x-smg-error-code"] == "mcp_server_forbidden"


@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["2026-07-28", "handshake"])
async def test_a_key_scoped_to_one_tool_sees_and_calls_only_that_tool(
    procs: Procs, tmp_path: Path, mode: str
) -> None:
    stack = start(procs, tmp_path)
    key = _key(stack.gw.url, name="echo-only", tools=["faults__echo"])

    async with mcp_client(stack.mcp, key=key, mode=mode) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        echoed = await client.call_tool("faults__echo", {"text": "allowed"})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("faults__pid", {})
    async with mcp_client(stack.gw.url + "/mcp/scoped/faults", key=key, mode=mode) as client:
        own = [tool.name for tool in (await client.list_tools()).tools]

    assert tools == ["faults__echo"]
    assert not echoed.is_error
    assert own == ["echo"]
