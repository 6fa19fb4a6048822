"""The faults server, in process (crash and cross-process behaviour live in test_processes.py)."""

from __future__ import annotations

import json
import os

import anyio
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.types import ImageContent, ToolListChangedNotification

from mcp_servers.faults import BUILTIN_TOOLS, LONG_TOOL_NAME, MAX_HUGE_BYTES, build_server
from tests.mcp_servers._helpers import text_of

CALL_TIMEOUT = 10.0


async def test_echo_tools_return_their_input() -> None:
    async with Client(build_server()) as client:
        echo = await client.call_tool("echo", {"text": "héllo\n"})
        long = await client.call_tool(LONG_TOOL_NAME, {"text": "long"})
    assert len(LONG_TOOL_NAME) == 70
    assert text_of(echo) == "héllo\n"
    assert text_of(long) == "long"


async def test_pid_is_this_process_when_in_process() -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("pid", {})
    assert result.structured_content == {"result": os.getpid()}


async def test_sleep_reports_label_interval_and_pid_as_json_text() -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("sleep", {"seconds": 0, "label": "a"})
        negative = await client.call_tool("sleep", {"seconds": -1})
    record = json.loads(text_of(result))
    assert record["label"] == "a"
    assert record["pid"] == os.getpid()
    assert record["start"] <= record["end"]
    assert negative.is_error


@pytest.mark.parametrize(("p", "fails"), [(0.0, False), (1.0, True)])
async def test_flaky_fails_with_probability_p(p: float, fails: bool) -> None:
    async with Client(build_server()) as client:
        results = [await client.call_tool("flaky", {"p": p}) for _ in range(5)]
    assert [r.is_error for r in results] == [fails] * 5


async def test_flaky_with_a_seed_is_deterministic() -> None:
    async with Client(build_server()) as client:
        first = await client.call_tool("flaky", {"p": 0.5, "seed": 7})
        second = await client.call_tool("flaky", {"p": 0.5, "seed": 7})
        invalid = await client.call_tool("flaky", {"p": 1.5})
    assert (first.is_error, text_of(first)) == (second.is_error, text_of(second))
    assert invalid.is_error


async def test_huge_returns_exactly_the_requested_bytes_and_caps_the_size() -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("huge", {"size_bytes": 1_000_000})
        too_big = await client.call_tool("huge", {"size_bytes": MAX_HUGE_BYTES + 1})
    assert len(text_of(result).encode()) == 1_000_000
    assert result.structured_content is None
    assert too_big.is_error and str(MAX_HUGE_BYTES) in text_of(too_big)


async def test_hang_never_returns_until_cancelled() -> None:
    async with Client(build_server()) as client:
        with anyio.move_on_after(0.2) as scope:
            await client.call_tool("hang", {})
        assert scope.cancelled_caught
        # The server is still usable after the abandoned call.
        with anyio.fail_after(CALL_TIMEOUT):
            assert text_of(await client.call_tool("echo", {"text": "alive"})) == "alive"


async def test_garbage_returns_hostile_but_well_formed_content() -> None:
    async with Client(build_server()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("garbage", {"seed": 1})
        again = await client.call_tool("garbage", {"seed": 1})
    assert tools["garbage"].output_schema is None
    assert not result.is_error
    assert result.model_dump() == again.model_dump()
    assert "\x00" in text_of(result, 0) and "\x1b[" in text_of(result, 0)
    assert len(text_of(result, 1)) == 256
    assert isinstance(result.content[2], ImageContent)
    assert result.structured_content is not None and "unexpected" in result.structured_content


async def test_set_tools_adds_and_removes_dynamic_echo_tools() -> None:
    async with Client(build_server()) as client:
        added = await client.call_tool("set_tools", {"extra": ["alpha", "beta"]})
        names_after_add = {tool.name for tool in (await client.list_tools()).tools}
        alpha = await client.call_tool("alpha", {"text": "a"})
        replaced = await client.call_tool("set_tools", {"extra": ["beta", "gamma"]})
        names_after_replace = {tool.name for tool in (await client.list_tools()).tools}
        clash = await client.call_tool("set_tools", {"extra": ["echo"]})
        invalid = await client.call_tool("set_tools", {"extra": ["has space"]})
    assert added.structured_content == {"tools": ["alpha", "beta"], "added": ["alpha", "beta"], "removed": []}
    assert names_after_add == BUILTIN_TOOLS | {"alpha", "beta"}
    assert text_of(alpha) == "a"
    assert replaced.structured_content == {
        "tools": ["beta", "gamma"],
        "added": ["gamma"],
        "removed": ["alpha"],
    }
    assert names_after_replace == BUILTIN_TOOLS | {"beta", "gamma"}
    assert clash.is_error and invalid.is_error


async def test_set_tools_notifies_listen_subscribers() -> None:
    async with Client(build_server()) as client, client.listen(tools_list_changed=True) as subscription:
        await client.call_tool("set_tools", {"extra": ["dyn"]})
        with anyio.fail_after(CALL_TIMEOUT):
            event = await anext(aiter(subscription))
    assert type(event).__name__ == "ToolsListChanged"


async def test_set_tools_notifies_handshake_era_clients() -> None:
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, ToolListChangedNotification):
            changed.set()

    async with Client(build_server(), mode="legacy", message_handler=on_message) as client:
        await client.call_tool("set_tools", {"extra": ["dyn"]})
        with anyio.fail_after(CALL_TIMEOUT):
            await changed.wait()


async def test_annotations_describe_each_tool_honestly() -> None:
    async with Client(build_server()) as client:
        tools = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}
    hints = {
        name: (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
        for name, a in tools.items()
        if a is not None
    }
    read_only, varying = (True, False, True, False), (True, False, False, False)
    assert hints == {
        "echo": read_only,
        LONG_TOOL_NAME: read_only,
        "pid": read_only,
        "huge": read_only,
        "garbage": read_only,
        "sleep": varying,
        "flaky": varying,
        "hang": varying,
        "crash": (False, True, False, False),
        "set_tools": (False, True, True, False),
        "progress": varying,
        "cancelled": varying,
    }
