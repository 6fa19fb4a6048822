"""Tool results far larger than the output limit, against real servers over every transport: the call
that produced one fails alone with a clear error, its session keeps serving, other servers never notice,
and the gateway never holds more than the per-message limit of it."""

from __future__ import annotations

import tracemalloc
from typing import Any

import anyio
import pytest

from mcp_servers.faults import MAX_HUGE_BYTES
from smg.mcp.registry.config import ServerSpec
from smg.mcp.runtime.framing import message_limit
from smg.mcp.runtime.pool import McpPool
from smg.mcp.types import ToolOutcome
from tests.mcp.runtime._support import http_spec, make_pool, stdio_spec
from tests.mcp_servers._helpers import Launcher

pytestmark = pytest.mark.e2e

OUTPUT_CAP = 64 * 1024
LIMIT = message_limit(OUTPUT_CAP)
WAIT = 120.0  # bounds a whole scenario: two 50 MiB results cross a pipe or a socket each way it runs


async def _faults(launch: Launcher, transport: str) -> ServerSpec:
    if transport == "stdio":
        return stdio_spec("faults", tool_timeout_secs=30)
    server = await launch("faults", transport)
    return http_spec("faults", server.url, tool_timeout_secs=30)


async def _concurrently(pool: McpPool, calls: list[tuple[str, str, dict[str, Any]]]) -> list[ToolOutcome]:
    outcomes: list[ToolOutcome | None] = [None] * len(calls)

    async def one(index: int, server: str, tool: str, arguments: dict[str, Any]) -> None:
        outcomes[index] = await pool.call_tool(server, tool, arguments)

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            for index, (server, tool, arguments) in enumerate(calls):
                tg.start_soon(one, index, server, tool, arguments)
    assert None not in outcomes
    return [outcome for outcome in outcomes if outcome is not None]


@pytest.mark.parametrize("transport", ["stdio", "streamable-http", "sse"])
async def test_two_huge_results_fail_alone_while_the_same_and_another_server_keep_answering(
    launch: Launcher, transport: str
) -> None:
    huge = ("faults", "huge", {"size_bytes": MAX_HUGE_BYTES})
    async with make_pool(max_output_bytes=OUTPUT_CAP) as pool:
        await pool.reconcile([await _faults(launch, transport), stdio_spec("calc")])
        with anyio.fail_after(WAIT):
            await pool.list_tools()
        outcomes = await _concurrently(
            pool,
            [
                huge,
                huge,
                ("faults", "echo", {"text": "same server"}),
                ("calc", "evaluate", {"expression": "6 * 7"}),
            ],
        )
        fits = await _concurrently(pool, [("faults", "huge", {"size_bytes": OUTPUT_CAP})])
        after = await _concurrently(pool, [("faults", "echo", {"text": "afterwards"})])
        faults = next(status for status in pool.statuses() if status.name == "faults")

    for outcome in outcomes[:2]:
        assert outcome.status == "error" and outcome.attempts == 1
        assert "--mcp-max-tool-output-bytes" in outcome.text  # names the setting that allows more
    assert [(o.status, o.text) for o in outcomes[2:]] == [("ok", "same server"), ("ok", "42")]
    assert (fits[0].status, fits[0].text) == ("ok", "x" * OUTPUT_CAP)
    assert (after[0].status, after[0].text) == ("ok", "afterwards")
    assert (faults.state, faults.reconnects) == ("connected", 0)


@pytest.mark.parametrize("transport", ["stdio", "streamable-http", "sse"])
async def test_a_huge_result_is_never_held_whole_in_memory(launch: Launcher, transport: str) -> None:
    async with make_pool(max_output_bytes=OUTPUT_CAP) as pool:
        await pool.reconcile([await _faults(launch, transport)])
        with anyio.fail_after(WAIT):
            await pool.list_tools()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            outcomes = await _concurrently(pool, [("faults", "huge", {"size_bytes": MAX_HUGE_BYTES})] * 2)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert [outcome.status for outcome in outcomes] == ["error", "error"]
    # Two messages of 50 MiB each passed through; at most two messages' limit (plus reads) was held.
    assert peak - baseline < 2 * LIMIT + 8 * 1024 * 1024, peak - baseline
