"""Tool resolution within a key's scope: an entry naming a server outside it is 403 before its
registration is looked at, tools and ``always`` servers outside it are not offered."""

from __future__ import annotations

from typing import Any

import pytest

from smg.errors import McpServerForbidden
from smg.keys.scope import KeyScope
from smg.routing.tools import resolve_tools
from tests.routing.conftest import FakeRuntime


def _body(*servers: str) -> dict[str, Any]:
    tools = [{"type": "mcp", "server_label": s} for s in servers]
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools}


@pytest.mark.parametrize("server", ["math", "not-registered"])
async def test_an_entry_naming_a_server_outside_the_scope_is_forbidden(server: str) -> None:
    scope = KeyScope(name="k", servers=frozenset({"clock"}))
    with pytest.raises(McpServerForbidden) as raised:
        await resolve_tools(_body("clock", server), FakeRuntime(), scope=scope)
    assert raised.value.param == "tools[1].server_label" and raised.value.status == 403


async def test_only_tools_in_the_scope_are_offered_and_always_servers_outside_it_are_dropped() -> None:
    scope = KeyScope(name="k", tools=frozenset({"clock__now"}))
    plan = await resolve_tools(_body("clock"), FakeRuntime(), always=["math"], scope=scope)
    assert plan is not None and list(plan.tools) == ["clock__now"]
    assert await resolve_tools(_body(), FakeRuntime(), always=["math"], scope=scope) is None
