"""The pool against real servers: every transport, concurrency, timeouts, tool errors, list_changed."""

from __future__ import annotations

import asyncio
import json

import pytest

from smg.mcp.errors import McpServerNotFound
from smg.mcp.runtime.pool import McpPool
from tests.mcp.runtime._support import RecordingObserver, eventually, http_spec, make_pool, stdio_spec
from tests.mcp_servers._helpers import Launcher

pytestmark = pytest.mark.e2e


async def test_lists_and_calls_tools_over_stdio_streamable_http_and_sse(launch: Launcher) -> None:
    clock = await launch("clock", "streamable-http")
    faults = await launch("faults", "sse")
    specs = [stdio_spec("calc"), http_spec("clock", clock.url), http_spec("faults", faults.url)]
    async with make_pool() as pool:
        await pool.reconcile(specs)
        tools = await pool.list_tools()
        calc = await pool.call_tool("calc", "evaluate", {"expression": "6 * 7"})
        now = await pool.call_tool("clock", "now", {"timezone": "UTC"})
        echo = await pool.call_tool("faults", "echo", {"text": "over sse"})
        statuses = {status.name: status for status in pool.statuses()}
    assert sorted(tools) == ["calc", "clock", "faults"]
    assert "evaluate" in {tool.name for tool in tools["calc"]}
    assert {tool.name for tool in tools["faults"] if tool.retry_safe} >= {"echo", "pid", "sleep"}
    assert (calc.status, calc.text) == ("ok", "42")
    assert now.status == "ok" and "UTC" in now.text
    assert (echo.status, echo.text) == ("ok", "over sse")
    assert {name: status.state for name, status in statuses.items()} == dict.fromkeys(tools, "connected")
    assert statuses["calc"].pid is not None and statuses["clock"].pid is None


async def test_concurrent_calls_through_the_pool_overlap(launch: Launcher) -> None:
    faults = await launch("faults")
    async with make_pool() as pool:
        await pool.reconcile([http_spec("faults", faults.url)])
        outcomes = await asyncio.gather(
            *(pool.call_tool("faults", "sleep", {"seconds": 1.0, "label": f"s{i}"}) for i in range(4))
        )
    records = [json.loads(outcome.text) for outcome in outcomes]
    assert [outcome.status for outcome in outcomes] == ["ok"] * 4
    assert sorted(record["label"] for record in records) == ["s0", "s1", "s2", "s3"]
    assert max(record["start"] for record in records) < min(record["end"] for record in records)


async def test_a_call_past_its_timeout_times_out_and_the_session_keeps_working(launch: Launcher) -> None:
    faults = await launch("faults")
    observer = RecordingObserver()
    async with make_pool(observer=observer) as pool:
        await pool.reconcile([http_spec("faults", faults.url, tool_timeouts={"hang": 0.5})])
        hung = await pool.call_tool("faults", "hang", {})
        after = await pool.call_tool("faults", "echo", {"text": "still here"})
    assert hung.status == "timeout" and hung.attempts == 1
    assert (after.status, after.text) == ("ok", "still here")
    assert ("call", "faults", "hang", "timeout") in observer.events


async def test_tool_errors_and_rejected_arguments_are_error_outcomes() -> None:
    async with make_pool() as pool:
        await pool.reconcile([stdio_spec("faults")])
        failed = await pool.call_tool("faults", "flaky", {"p": 1.0})
        bad_arguments = await pool.call_tool("faults", "sleep", {"seconds": "not a number"})
        unknown = await pool.call_tool("faults", "no_such_tool", {})
    assert failed.status == "error" and "flaky failure" in failed.text
    assert bad_arguments.status == "error"
    assert unknown.status == "error"


@pytest.mark.parametrize("transport", ["stdio", "streamable-http", "sse"])
async def test_list_changed_updates_the_cached_tool_list(launch: Launcher, transport: str) -> None:
    if transport == "stdio":
        spec = stdio_spec("faults")
    else:
        spec = http_spec("faults", (await launch("faults", transport)).url)
    observer = RecordingObserver()
    async with make_pool(observer=observer) as pool:
        await pool.reconcile([spec])
        before = {tool.name for tool in (await pool.list_tools())["faults"]}
        changed = await pool.call_tool("faults", "set_tools", {"extra": ["dyn_a"]})
        assert changed.status == "ok"

        async def listed() -> bool:
            return "dyn_a" in {tool.name for tool in (await pool.list_tools())["faults"]}

        await eventually(listed)
    assert "dyn_a" not in before
    assert ("refreshed", "faults", "list_changed") in observer.events


async def test_unknown_server_raises_not_found() -> None:
    async with McpPool() as pool:
        with pytest.raises(McpServerNotFound):
            await pool.call_tool("nope", "echo", {})
        with pytest.raises(McpServerNotFound):
            await pool.list_tools(["nope"])
