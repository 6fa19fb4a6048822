"""An upstream MCP server killed while an MCP client of the gateway's endpoint waits on one of its tools:
that client gets an MCP error result (no hang), other clients go on, and once the server is back the
next call works; real processes throughout."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from mcp.types import CallToolResult, TextContent

from tests._procs import Procs
from tests.mcp.endpoint._stack import add_server, mcp_client
from tests.mcp.runtime._support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]


def _text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def test_a_killed_server_fails_the_call_in_flight_as_an_mcp_error_result_and_comes_back(
    procs: Procs, tmp_path: Path
) -> None:
    victim, victim_url = procs.mcp_faults()
    _, other_url = procs.mcp_faults()
    gw = procs.gateway("--mcp-registry", str(tmp_path / "registry.db"))
    add_server(gw, "faults", victim_url, tool_timeout_secs=60)
    add_server(gw, "other", other_url)
    running = anyio.Event()
    ended: list[CallToolResult] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        running.set()

    async with mcp_client(gw.url + "/mcp") as caller, mcp_client(gw.url + "/mcp") as bystander:

        async def call() -> None:
            args = {"steps": 1, "label": "killed"}
            ended.append(await caller.call_tool("faults__progress", args, progress_callback=on_progress))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await running.wait()  # the call runs on the server
                os.kill(victim.pid, signal.SIGKILL)
            # The bystander's session and the other server's tools are untouched meanwhile.
            during = await bystander.call_tool("other__echo", {"text": "still here"})
            listed = {tool.name for tool in (await bystander.list_tools()).tools}
        victim.wait(timeout=10)
        procs.mcp_faults(urlsplit(victim_url).port or 0)  # the same server, back on its address
        answers: list[CallToolResult] = []

        async def back() -> bool:  # once the gateway's session to the restarted server is up
            answers.append(await caller.call_tool("faults__echo", {"text": "back"}))
            return not answers[-1].is_error

        await eventually(back, wait=60)

    (failed,) = ended
    assert failed.is_error
    assert "faults" in _text(failed)
    assert not during.is_error and _text(during) == "still here"
    assert "other__echo" in listed
    assert _text(answers[-1]) == "back"
