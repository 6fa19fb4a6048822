"""Which MCP tools a request gets, and the body the model sees."""

from __future__ import annotations

from typing import Any

import pytest

from smg.errors import InvalidRequest
from smg.routing.tools import resolve_tools
from tests.routing.conftest import LOOKUP, FakeRuntime


def body(*tools: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": list(tools), **extra}


async def test_mcp_entry_becomes_function_tools_and_client_tools_stay_untouched() -> None:
    plan = await resolve_tools(body(LOOKUP, {"type": "mcp", "server_label": "clock"}), FakeRuntime())
    assert plan is not None
    assert plan.body["tools"][0] == LOOKUP
    offered = [t["function"]["name"] for t in plan.body["tools"][1:]]
    assert offered == ["clock__now", "clock__echo"]
    assert all(t["type"] == "function" for t in plan.body["tools"])
    assert plan.function_tools[0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert plan.function_tools[0]["function"]["description"] == "now of clock"
    assert (plan.tools["clock__now"].server, plan.tools["clock__now"].name) == ("clock", "now")
    assert plan.owner("clock__now") == "mcp"
    assert plan.owner("lookup") == "client"
    assert plan.owner("other") == "unknown"


async def test_allowed_tools_limit_the_offered_tools() -> None:
    entry = {"type": "mcp", "server_label": "math", "allowed_tools": ["add", "missing"]}
    plan = await resolve_tools(body(entry), FakeRuntime())
    assert plan is not None
    assert list(plan.tools) == ["math__add"]


async def test_allowed_tools_object_form_and_merged_entries() -> None:
    first = {"type": "mcp", "server_label": "math", "allowed_tools": {"tool_names": ["add"]}}
    second = {"type": "mcp", "server_label": "math", "allowed_tools": ["fail"]}
    plan = await resolve_tools(body(first, second), FakeRuntime())
    assert plan is not None
    assert sorted(plan.tools) == ["math__add", "math__fail"]


async def test_servers_exposed_always_are_added_without_an_entry() -> None:
    plan = await resolve_tools(body(LOOKUP), FakeRuntime(), always=["clock"])
    assert plan is not None
    assert sorted(plan.tools) == ["clock__echo", "clock__now"]


async def test_no_mcp_tools_means_no_plan() -> None:
    assert await resolve_tools(body(LOOKUP), FakeRuntime()) is None
    assert await resolve_tools({"model": "m", "messages": []}, FakeRuntime()) is None


async def test_unknown_server_label_is_a_400_naming_the_entry() -> None:
    with pytest.raises(InvalidRequest) as info:
        await resolve_tools(body(LOOKUP, {"type": "mcp", "server_label": "nope"}), FakeRuntime())
    assert info.value.status == 400
    assert info.value.param == "tools[1].server_label"


@pytest.mark.parametrize("approval", ["always", {"never": {"tool_names": ["now"]}}])
async def test_require_approval_other_than_never_is_refused(approval: Any) -> None:
    entry = {"type": "mcp", "server_label": "clock", "require_approval": approval}
    with pytest.raises(InvalidRequest) as info:
        await resolve_tools(body(entry), FakeRuntime())
    assert info.value.param == "tools[0].require_approval"


async def test_client_function_named_like_an_mcp_tool_is_refused() -> None:
    clash = {"type": "function", "function": {"name": "clock__now"}}
    with pytest.raises(InvalidRequest) as info:
        await resolve_tools(body(clash, {"type": "mcp", "server_label": "clock"}), FakeRuntime())
    assert info.value.param == "tools[0].function.name"


async def test_more_than_one_choice_is_refused_with_mcp_tools() -> None:
    with pytest.raises(InvalidRequest) as info:
        await resolve_tools(body({"type": "mcp", "server_label": "clock"}, n=2), FakeRuntime())
    assert info.value.param == "n"
