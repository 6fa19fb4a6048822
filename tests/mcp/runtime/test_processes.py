"""stdio children are never leaked: not by aclose, not by reconcile churn, not when the gateway dies."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from subprocess import PIPE

import anyio
import pytest

from smg.mcp.control import McpControl
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.store import SqliteRegistry
from tests.mcp.runtime._support import WAIT, eventually, make_pool, open_fds, process_gone, stdio_spec
from tests.mcp_servers._helpers import REPO_ROOT, read_line, stop_process

pytestmark = pytest.mark.e2e

# A stand-in stdio server that starts in milliseconds and exits when its stdin closes; it never answers,
# so the pool is still connecting when the server is removed (the harder case for cleanup).
SILENT = ServerSpec(
    name="silent",
    transport="stdio",
    command=sys.executable,
    args=("-S", "-c", "import sys; sys.stdin.read()"),
)


async def test_aclose_stops_every_stdio_child() -> None:
    async with make_pool() as pool:
        await pool.reconcile([stdio_spec("faults"), stdio_spec("calc")])
        await eventually(lambda: all(status.state == "connected" for status in pool.statuses()))
        pids = [status.pid for status in pool.statuses()]
        await pool.aclose()
        assert pool.statuses() == []
    assert None not in pids
    await eventually(lambda: all(process_gone(pid) for pid in pids if pid is not None))


async def test_reconcile_churn_leaks_no_process_and_no_file_descriptor() -> None:
    async with make_pool() as pool:
        # Warm up once so lazily created resources (selectors, thread pools) are not counted as leaks.
        await pool.reconcile([SILENT])
        await eventually(lambda: pool.statuses()[0].pid is not None)
        await pool.reconcile([])
        fds_before = open_fds()
        pids: list[int] = []
        for _ in range(100):
            await pool.reconcile([SILENT])
            await eventually(lambda: pool.statuses()[0].pid is not None)
            pid = pool.statuses()[0].pid
            assert pid is not None
            pids.append(pid)
            await pool.reconcile([])
        real: list[int] = []
        for _ in range(3):
            await pool.reconcile([stdio_spec("calc")])
            assert (await pool.call_tool("calc", "evaluate", {"expression": "1 + 1"})).text == "2"
            pid = pool.statuses()[0].pid
            assert pid is not None
            real.append(pid)
            await pool.reconcile([])
    await eventually(lambda: all(process_gone(pid) for pid in pids + real))
    assert len(set(pids)) == 100
    assert open_fds() <= fds_before + 5


async def test_children_die_with_a_gateway_killed_by_sigkill() -> None:
    gateway = await anyio.open_process(
        [sys.executable, "-m", "tests.mcp.runtime._gateway"], cwd=REPO_ROOT, stdout=PIPE, stderr=None
    )
    try:
        assert gateway.stdout is not None
        with anyio.fail_after(WAIT):
            line = (await read_line(gateway.stdout)).decode()
        prefix, *pid_texts = line.split()
        assert prefix == "CHILD_PIDS"
        children = [int(pid) for pid in pid_texts]
        assert len(children) == 2 and not any(process_gone(pid) for pid in children)
        gateway.send_signal(signal.SIGKILL)
        await eventually(lambda: all(process_gone(pid) for pid in children))
    finally:
        await stop_process(gateway)
        await gateway.aclose()


async def test_sync_reconciles_only_when_the_registry_version_moves(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "mcp.db")
    registry.add(SILENT)
    async with make_pool() as pool:
        control = McpControl(registry, pool)
        assert await control.sync() is True
        assert [status.name for status in pool.statuses()] == ["silent"]
        assert await control.sync() is False
        registry.remove("silent")
        assert await control.sync() is True
        assert pool.statuses() == []
