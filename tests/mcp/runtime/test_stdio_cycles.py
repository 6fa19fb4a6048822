"""Registering and removing a real stdio MCP server through the admin API, over and over, leaves no
process and no file descriptor behind; a stdio server killed while registered is restarted and used."""

from __future__ import annotations

import inspect
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from smg.testing.gateway import RunningGateway
from smg.testing.processes import pid_alive
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e

TINY = str(Path(__file__).resolve().parents[2] / "fixtures" / "tiny_mcp_stdio.py")
SERVER = {"name": "tiny", "transport": "stdio", "command": sys.executable, "args": [TINY]}
CYCLES = 100
CALL_EVERY = 5
FD_SLACK = 10
WAIT = 15.0  # bound of every poll; the tiny server starts in about 50 ms


@pytest.fixture
async def admin(start_gateway: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    gateway: RunningGateway = await start_gateway(make_settings())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


def _children() -> set[int]:
    """PIDs (zombies included) whose parent is this test process."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # it exited while we looked
            continue
        if stat.rpartition(")")[2].split()[1] == me:
            found.add(int(entry))
    return found


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _eventually(check: Callable[[], Any], *, what: str) -> Any:
    """Poll ``check`` until it returns something truthy (awaiting it if needed); at most WAIT seconds."""
    with anyio.move_on_after(WAIT):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await anyio.sleep(0.02)
    raise AssertionError(f"not within {WAIT:g} s: {what}")


async def _child_pid(
    admin: httpx.AsyncClient, *, connected: bool = False, other_than: int | None = None
) -> int | None:
    """The PID of tiny's stdio child once it is known (and, if ``connected``, its session is up)."""
    resp = await admin.get("/mcp/servers")
    assert resp.status_code == 200, resp.text
    (server,) = resp.json()["servers"]
    status = server["status"]
    pid = status["pid"]
    if not isinstance(pid, int) or pid == other_than or (connected and status["state"] != "connected"):
        return None
    return pid


async def _add(admin: httpx.AsyncClient) -> None:
    resp = await admin.post("/mcp/servers", json=SERVER)
    assert resp.status_code == 201, resp.text


async def _remove(admin: httpx.AsyncClient) -> None:
    resp = await admin.delete("/mcp/servers/tiny")
    assert resp.status_code == 200, resp.text


async def _echo(admin: httpx.AsyncClient, text: str) -> None:
    resp = await admin.post("/mcp/servers/tiny/tools/echo/call", json={"arguments": {"text": text}})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["status"], body["text"]) == ("ok", text)


async def test_add_remove_cycles_leave_no_process_and_no_fd(admin: httpx.AsyncClient) -> None:
    children_before = _children()
    # One warm-up cycle, so lazily created resources (thread pools, selectors, sqlite) are not leaks.
    await _add(admin)
    await _echo(admin, "warm-up")
    await _remove(admin)
    await _eventually(lambda: _children() == children_before, what="the warm-up child reaped")
    fds_before = _open_fds()

    pids: list[int] = []
    for cycle in range(CYCLES):
        await _add(admin)
        # Most cycles remove the server while its session may still be opening (the owner task is
        # cancelled); every CALL_EVERY-th one uses the session first and is closed gracefully.
        pids.append(await _eventually(lambda: _child_pid(admin), what=f"cycle {cycle}: a child"))
        if cycle % CALL_EVERY == 0:
            await _echo(admin, f"cycle {cycle}")
        await _remove(admin)

    assert len(set(pids)) == CYCLES
    await _eventually(lambda: _children() == children_before, what="every stdio child reaped")
    assert not [pid for pid in pids if pid_alive(pid)]
    assert _open_fds() <= fds_before + FD_SLACK, (fds_before, _open_fds())


async def test_a_stdio_server_killed_while_registered_is_restarted_and_used(
    admin: httpx.AsyncClient,
) -> None:
    children_before = _children()
    await _add(admin)
    first: int = await _eventually(lambda: _child_pid(admin, connected=True), what="connected")
    await _echo(admin, "before")

    os.kill(first, signal.SIGKILL)

    second: int = await _eventually(
        lambda: _child_pid(admin, connected=True, other_than=first), what="a new child with a session"
    )
    assert not pid_alive(first)
    await _echo(admin, "after")
    servers = (await admin.get("/mcp/servers")).json()["servers"]
    assert servers[0]["status"]["reconnects"] == 1
    await _remove(admin)
    await _eventually(lambda: _children() == children_before, what="every stdio child reaped")
    assert not pid_alive(second)
