"""``notifications/tools/list_changed`` reaches connected MCP clients of the gateway when the registry
changes on a running gateway (``smg mcp add``, the admin API's remove) and when a server's own tool
list changes; real processes, the mcp SDK's `Client`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import orjson
import pytest
from mcp import Client

from mcp_servers.faults import BUILTIN_TOOLS
from smg.mcp.registry.naming import exposed_tool_name
from tests._procs import Procs
from tests.mcp.endpoint._stack import mcp_client, start
from tests.mcp.runtime._support import eventually

pytestmark = pytest.mark.e2e


async def _names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def test_smg_mcp_add_and_remove_on_a_running_gateway_notify_connected_clients(
    procs: Procs, tmp_path: Path
) -> None:
    stack = start(procs, tmp_path)
    _, second = procs.mcp_faults()
    add = [sys.executable, "-m", "smg", "mcp", "add", "second", "--url", second, "--gateway", stack.gw.url]

    async with mcp_client(stack.mcp) as client:
        before = await _names(client)
        async with client.listen(tools_list_changed=True) as changes:
            done = await anyio.to_thread.run_sync(
                lambda: subprocess.run(add, capture_output=True, text=True, timeout=120)
            )
            assert done.returncode == 0, done.stderr
            with anyio.fail_after(30):
                await anext(aiter(changes))
            added = await _names(client)
            async with httpx.AsyncClient(timeout=30) as http:
                removed = await http.delete(stack.gw.url + "/mcp/servers/second")
            assert removed.status_code == 200, removed.text
            with anyio.fail_after(30):
                await anext(aiter(changes))
            after = await _names(client)

    assert "second__echo" not in before
    assert added - before == {exposed_tool_name("second", name) for name in BUILTIN_TOOLS}
    assert after == before


async def test_an_upstream_tool_list_change_notifies_connected_clients(procs: Procs, tmp_path: Path) -> None:
    stack = start(procs, tmp_path)
    async with mcp_client(stack.mcp) as client, mcp_client(stack.faults_url) as direct:
        async with client.listen(tools_list_changed=True) as changes:
            await direct.call_tool("set_tools", {"extra": ["dyn_a"]})  # not through the gateway
            with anyio.fail_after(30):
                await anext(aiter(changes))

        # The gateway re-lists the server's tools on its announcement; a client re-listing on the
        # notification may be a moment ahead of that, so it re-lists until it sees the new tool.
        async def listed() -> bool:
            return "faults__dyn_a" in await _names(client)

        await eventually(listed, wait=30)


HANDSHAKE = "2025-11-25"  # the revision of clients that keep a session (Claude Code, Cursor, the Inspector)


async def test_a_handshake_era_session_is_told_on_its_own_stream(procs: Procs, tmp_path: Path) -> None:
    stack = start(procs, tmp_path)
    _, second = procs.mcp_faults()
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": HANDSHAKE,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(stack.mcp, json=initialize, headers=accept)
        assert opened.status_code == 200, opened.text
        session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": HANDSHAKE}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (
            await http.post(stack.mcp, json=initialized, headers={**accept, **session})
        ).status_code == 202
        get = {"Accept": "text/event-stream", **session}
        async with http.stream("GET", stack.mcp, headers=get) as events:
            assert events.status_code == 200
            spec = {"name": "second", "transport": "streamable-http", "url": second}
            added = await http.post(stack.gw.url + "/mcp/servers", json=spec, timeout=60)
            assert added.status_code == 201, added.text
            told = []
            with anyio.fail_after(30):
                async for line in events.aiter_lines():
                    if line.startswith("data:"):
                        told.append(orjson.loads(line[5:])["method"])
                    if "notifications/tools/list_changed" in told:
                        break
    assert "notifications/tools/list_changed" in told
