"""The gateway's MCP endpoint with the mcp SDK's own `Client` over streamable HTTP, against real
processes: a gateway and the ``faults`` MCP server (tools, a resource, a template and a prompt)."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from mcp import MCPError
from mcp.types import TextContent, TextResourceContents

from mcp_servers.faults import BUILTIN_TOOLS, LONG_TOOL_NAME
from smg.mcp.registry.naming import exposed_tool_name
from tests._procs import Procs
from tests.mcp.endpoint._stack import mcp_client, start
from tests.mcp.runtime._support import eventually

pytestmark = pytest.mark.e2e


def _text(result: object) -> str:
    content = getattr(result, "content")  # noqa: B009 - results and prompt messages alike
    return "".join(block.text for block in content if isinstance(block, TextContent))


async def test_tools_list_is_the_tool_loop_s_names_with_the_servers_schemas_and_annotations(
    procs: Procs, tmp_path: Path
) -> None:
    stack = start(procs, tmp_path)
    async with mcp_client(stack.mcp) as client, mcp_client(stack.faults_url) as direct:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        upstream = {tool.name: tool for tool in (await direct.list_tools()).tools}

    assert set(listed) == {exposed_tool_name("faults", name) for name in BUILTIN_TOOLS}
    shortened = exposed_tool_name("faults", LONG_TOOL_NAME)
    assert len(shortened) == 64 and shortened != f"faults__{LONG_TOOL_NAME}"
    for name, tool in upstream.items():
        mine = listed[exposed_tool_name("faults", name)]
        assert mine.input_schema == tool.input_schema
        assert mine.annotations == tool.annotations
        assert mine.description == tool.description


async def test_tools_call_runs_through_the_pool_and_is_counted_as_an_mcp_client_call(
    procs: Procs, tmp_path: Path
) -> None:
    stack = start(procs, tmp_path)
    async with mcp_client(stack.mcp) as client:
        echoed = await client.call_tool("faults__echo", {"text": "hello"})
        long = await client.call_tool(exposed_tool_name("faults", LONG_TOOL_NAME), {"text": "long"})
        failed = await client.call_tool("faults__flaky", {"p": 1.0})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("faults__no_such_tool", {})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("echo", {"text": "unprefixed"})

    assert not echoed.is_error and _text(echoed) == "hello"
    assert not long.is_error and _text(long) == "long"
    assert failed.is_error and "flaky failure" in _text(failed)
    calls = "smg_mcp_tool_calls_total"
    assert stack.gw.metric(calls, server="faults", tool_name="echo", caller="mcp_client", outcome="ok") == 1
    assert (
        stack.gw.metric(calls, server="faults", tool_name="flaky", caller="mcp_client", outcome="error") == 1
    )
    assert stack.gw.metric(calls, caller="loop") == 0
    assert stack.gw.metric("smg_mcp_tool_duration_seconds_count", server="faults", caller="mcp_client") == 3


async def test_a_server_s_own_endpoint_serves_its_tools_under_their_own_names(
    procs: Procs, tmp_path: Path
) -> None:
    stack = start(procs, tmp_path)
    async with mcp_client(stack.gw.url + "/mcp/scoped/faults") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        echoed = await client.call_tool("echo", {"text": "own name"})
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("faults__echo", {"text": "prefixed"})

    assert names == BUILTIN_TOOLS
    assert _text(echoed) == "own name"
    assert prompts == ["greet"]
    async with httpx.AsyncClient(timeout=10) as http:
        unknown = await http.post(stack.gw.url + "/mcp/scoped/nope", json={})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "mcp_server_not_found"
    assert unknown.headers["x-smg-error-code"] == "mcp_server_not_found"


async def test_prompts_and_resources_are_offered_namespaced(procs: Procs, tmp_path: Path) -> None:
    stack = start(procs, tmp_path)
    async with mcp_client(stack.mcp) as client:
        prompts = (await client.list_prompts()).prompts
        prompt = await client.get_prompt("faults__greet", {"name": "Ada"})
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        about = await client.read_resource("smg://faults/faults://about")
        templated = await client.read_resource("smg://faults/faults://echo/abc")
        with pytest.raises(MCPError, match="Unknown prompt"):
            await client.get_prompt("greet", {"name": "Ada"})
        with pytest.raises(MCPError, match="not a resource of this endpoint"):
            await client.read_resource("faults://about")

    assert [p.name for p in prompts] == ["faults__greet"]
    assert [m.content.text for m in prompt.messages if isinstance(m.content, TextContent)] == [
        "Say hello to Ada."
    ]
    assert [r.uri for r in resources] == ["smg://faults/faults://about"]
    assert [t.uri_template for t in templates] == ["smg://faults/faults://echo/{text}"]
    assert [(c.uri, c.text) for c in about.contents if isinstance(c, TextResourceContents)] == [
        ("smg://faults/faults://about", "faults: deliberately misbehaving tools for tests")
    ]
    assert [c.text for c in templated.contents if isinstance(c, TextResourceContents)] == ["abc"]


# "auto" speaks 2026-07-28 (one stream per request); "legacy" the handshake revision of today's clients.
REVISIONS = pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["2026-07-28", "handshake"])


@REVISIONS
async def test_progress_of_the_upstream_server_reaches_the_client(
    procs: Procs, tmp_path: Path, mode: str
) -> None:
    stack = start(procs, tmp_path)
    seen: list[tuple[float, float | None, str | None]] = []
    three = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        if len(seen) == 3:
            three.set()

    async with mcp_client(stack.mcp, mode=mode) as client:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: client.call_tool(
                        "faults__progress", {"steps": 3, "label": "p"}, progress_callback=on_progress
                    )
                )
                await three.wait()
                tg.cancel_scope.cancel()  # the tool never returns on its own

    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


@REVISIONS
async def test_a_call_the_client_cancels_is_cancelled_on_the_upstream_server(
    procs: Procs, tmp_path: Path, mode: str
) -> None:
    stack = start(procs, tmp_path)
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with mcp_client(stack.mcp, mode=mode) as client:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: client.call_tool(
                        "faults__progress", {"steps": 1, "label": "cancel-me"}, progress_callback=on_progress
                    )
                )
                await started.wait()  # the call runs on the upstream server
                tg.cancel_scope.cancel()
        before = await client.call_tool("faults__cancelled", {"label": "never-called"})

        async def seen() -> bool:  # the upstream server records the cancellation once it reaches it
            return _text(await client.call_tool("faults__cancelled", {"label": "cancel-me"})) == "true"

        await eventually(seen, wait=30)

    assert _text(before) == "false"
