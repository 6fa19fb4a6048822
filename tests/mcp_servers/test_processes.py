"""The example servers as real processes on 127.0.0.1: transports, READY line, signals, faults."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path
from subprocess import PIPE

import anyio
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.types import REQUEST_TIMEOUT

from tests.mcp_servers._helpers import (
    READY_TIMEOUT,
    REPO_ROOT,
    Launcher,
    read_line,
    read_rest,
    server_command,
    stop_process,
    text_of,
)

pytestmark = pytest.mark.e2e

CALL_TIMEOUT = 30.0
READY_URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/(mcp|sse)$")


async def test_streamable_http_server_announces_its_url_and_exits_zero_on_sigterm(launch: Launcher) -> None:
    server = await launch("clock", "streamable-http")
    match = READY_URL.match(server.url)
    assert match is not None and match.group(2) == "mcp" and int(match.group(1)) > 0
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(server.url) as client:
            result = await client.call_tool("now", {"timezone": "Europe/Berlin"})
    assert not result.is_error
    assert result.structured_content is not None and result.structured_content["timezone"] == "Europe/Berlin"

    assert await server.stop() == 0
    assert server.process.stdout is not None
    with anyio.fail_after(CALL_TIMEOUT):
        assert await read_rest(server.process.stdout) == b""  # the READY line was the only output


async def test_sse_server_serves_the_sdk_sse_client(launch: Launcher) -> None:
    server = await launch("clock", "sse")
    assert server.url.endswith("/sse")
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(sse_client(server.url)) as client:
            result = await client.call_tool(
                "convert",
                {"time": "2026-01-01T00:00:00", "from_timezone": "UTC", "to_timezone": "Asia/Tokyo"},
            )
    assert result.structured_content is not None
    assert result.structured_content["time"] == "2026-01-01T09:00:00+09:00"
    assert await server.stop() == 0


async def test_stdio_server_serves_the_sdk_stdio_client() -> None:
    params = StdioServerParameters(
        command=server_command("calc", "stdio")[0], args=server_command("calc", "stdio")[1:], cwd=REPO_ROOT
    )
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(params) as client:
            result = await client.call_tool("evaluate", {"expression": "6 * 7"})
    assert result.structured_content == {"result": 42}


async def test_stdio_server_writes_only_json_rpc_and_exits_zero_on_sigterm() -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    process = await anyio.open_process(
        server_command("calc", "stdio"), cwd=REPO_ROOT, stdin=PIPE, stdout=PIPE, stderr=None
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        await process.stdin.send(json.dumps(initialize).encode() + b"\n")
        with anyio.fail_after(READY_TIMEOUT):
            response = json.loads(await read_line(process.stdout))
        assert response["id"] == 1 and "result" in response
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(CALL_TIMEOUT):
            assert await process.wait() == 0
            assert await read_rest(process.stdout) == b""
    finally:
        await stop_process(process)
        await process.aclose()


async def test_concurrent_sleeps_on_one_session_overlap(launch: Launcher) -> None:
    server = await launch("faults")
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(server.url) as client:
            results = await asyncio.gather(
                *(client.call_tool("sleep", {"seconds": 1.0, "label": f"s{i}"}) for i in range(4))
            )
    records = [json.loads(text_of(result)) for result in results]
    assert sorted(record["label"] for record in records) == ["s0", "s1", "s2", "s3"]
    assert {record["pid"] for record in records} == {server.pid}
    # All four intervals share a common instant: the latest start precedes the earliest end.
    assert max(record["start"] for record in records) < min(record["end"] for record in records)


async def test_pid_names_the_server_process(launch: Launcher) -> None:
    server = await launch("faults")
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(server.url) as client:
            result = await client.call_tool("pid", {})
    assert result.structured_content == {"result": server.pid}
    assert server.pid != os.getpid()


async def test_hang_hits_the_read_timeout_without_wedging_the_server(launch: Launcher) -> None:
    server = await launch("faults")
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(server.url) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("hang", {}, read_timeout_seconds=0.5)
            assert caught.value.code == REQUEST_TIMEOUT
            assert text_of(await client.call_tool("echo", {"text": "still here"})) == "still here"
    assert await server.stop() == 0  # graceful shutdown is bounded even with a call still hanging


async def test_crash_kills_the_server_with_status_one(launch: Launcher) -> None:
    server = await launch("faults")
    # mcp 2.3's streamable-HTTP client cancels the in-flight call and re-raises the transport error
    # from the Client's exit (python-sdk #2732), so the disconnect surfaces as an exception group.
    with (
        pytest.RaisesGroup(httpx2.RemoteProtocolError, flatten_subgroups=True),
        anyio.fail_after(CALL_TIMEOUT),
    ):
        async with Client(server.url) as client:
            await client.call_tool("crash", {})
    assert await server.wait_exit() == 1


async def test_set_tools_over_http_changes_the_listing_and_notifies_listeners(launch: Launcher) -> None:
    server = await launch("faults")
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(server.url) as client, client.listen(tools_list_changed=True) as subscription:
            await client.call_tool("set_tools", {"extra": ["remote_echo"]})
            event = await anext(aiter(subscription))
            names = {tool.name for tool in (await client.list_tools()).tools}
            echoed = await client.call_tool("remote_echo", {"text": "hi"})
    assert type(event).__name__ == "ToolsListChanged"
    assert "remote_echo" in names
    assert text_of(echoed) == "hi"


async def test_notes_persist_across_server_processes(launch: Launcher, tmp_path: Path) -> None:
    db = str(tmp_path / "notes.db")
    first = await launch("notes", "streamable-http", "--db", db)
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(first.url) as client:
            await client.call_tool("add", {"text": "survives restarts", "tags": ["e2e"]})
    assert await first.stop() == 0

    second = await launch("notes", "sse", "--db", db)
    with anyio.fail_after(CALL_TIMEOUT):
        async with Client(sse_client(second.url)) as client:
            found = await client.call_tool("search", {"query": "E2E"})
    assert found.structured_content is not None
    assert [note["text"] for note in found.structured_content["result"]] == ["survives restarts"]
