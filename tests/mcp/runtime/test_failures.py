"""Servers that die, restart, or never answer: outcomes, reconnects, fail-open listing, the breaker."""

from __future__ import annotations

import os
import signal

import anyio
import pytest

from smg.mcp.errors import McpServerUnavailable
from smg.mcp.runtime.pool import McpPool
from smg.mcp.types import ToolOutcome
from tests.mcp.runtime._support import (
    RecordingObserver,
    eventually,
    free_port,
    http_spec,
    make_pool,
    process_gone,
    stdio_spec,
)
from tests.mcp_servers._helpers import Launcher

pytestmark = pytest.mark.e2e


async def test_server_killed_mid_call_gives_unavailable_and_a_restarted_server_is_used_again(
    launch: Launcher,
) -> None:
    port = free_port()
    first = await launch("faults", "streamable-http", "--port", str(port))
    observer = RecordingObserver()
    async with make_pool(observer=observer, ready_timeout=5.0) as pool:
        await pool.reconcile([http_spec("faults", first.url)])
        await pool.list_tools()
        outcome: list[ToolOutcome] = []

        async def hang() -> None:
            outcome.append(await pool.call_tool("faults", "hang", {}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            await anyio.wait_all_tasks_blocked()
            first.process.kill()
        # hang is read-only, so retry-safe: replayed once after the loss, which fails too.
        assert (outcome[0].status, outcome[0].attempts) == ("unavailable", 2)

        second = await launch("faults", "streamable-http", "--port", str(port))
        assert second.url == first.url
        # The pool reconnects on its own; a call waits for the new session.
        echoed = await pool.call_tool("faults", "echo", {"text": "back"})
        pid = await pool.call_tool("faults", "pid", {})
    assert (echoed.status, echoed.text) == ("ok", "back")
    assert pid.text == str(second.pid)
    assert ("reconnect", "faults") in observer.events


async def test_a_non_retry_safe_call_is_not_replayed_when_the_server_dies_under_it(launch: Launcher) -> None:
    server = await launch("faults")
    async with make_pool() as pool:
        await pool.reconcile([http_spec("faults", server.url)])
        tools = {tool.name: tool for tool in (await pool.list_tools())["faults"]}
        crashed = await pool.call_tool("faults", "crash", {})
    assert not tools["crash"].retry_safe
    assert (crashed.status, crashed.attempts) == ("unavailable", 1)
    assert await server.wait_exit() == 1


async def test_killed_stdio_child_is_restarted_with_a_new_pid() -> None:
    observer = RecordingObserver()
    async with make_pool(observer=observer) as pool:
        await pool.reconcile([stdio_spec("faults")])
        first = await pool.call_tool("faults", "pid", {})
        [status] = pool.statuses()
        assert status.pid == int(first.text)
        os.kill(int(first.text), signal.SIGKILL)
        await eventually(lambda: process_gone(int(first.text)))
        second = await pool.call_tool("faults", "pid", {})
        [after] = pool.statuses()
    assert second.status == "ok" and second.text != first.text
    assert after.pid == int(second.text) and after.reconnects >= 1
    assert ("stdio_restart", "faults") in observer.events


async def test_one_server_down_does_not_hide_the_others_tools_unless_it_is_required() -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/mcp"
    async with make_pool(ready_timeout=1.0) as pool:
        await pool.reconcile([stdio_spec("calc"), http_spec("down", dead_url)])
        await eventually(lambda: pool.statuses()[0].state == "connected")
        tools = await pool.list_tools()
        await pool.reconcile([stdio_spec("calc"), http_spec("down", dead_url, required=True)])
        with pytest.raises(McpServerUnavailable) as caught:
            await pool.list_tools()
        outcome = await pool.call_tool("down", "anything", {})
        statuses = {status.name: status for status in pool.statuses()}
    assert list(tools) == ["calc"]
    assert caught.value.server == "down" and caught.value.code == "mcp_server_unavailable"
    assert outcome.status == "unavailable"
    assert statuses["down"].state in ("connecting", "failed") and statuses["down"].last_error


async def test_open_breaker_refuses_calls_without_calling() -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/mcp"
    from smg.settings import BreakerSettings
    from smg.workers.breaker import CircuitBreaker

    settings = BreakerSettings(failure_threshold=1, timeout_secs=3600)
    observer = RecordingObserver()
    async with McpPool(
        breaker_factory=lambda _name: CircuitBreaker(settings), observer=observer, ready_timeout=0.2
    ) as pool:
        await pool.reconcile([http_spec("down", dead_url)])
        first = await pool.call_tool("down", "echo", {})
        second = await pool.call_tool("down", "echo", {})
        [status] = pool.statuses()
    assert first.status == "unavailable"
    assert (second.status, second.attempts) == ("breaker_open", 0)
    assert status.breaker == "open"
    assert ("breaker", "down", "open") in observer.events
