"""Fixtures that run the example servers as real processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from subprocess import PIPE

import anyio
import pytest
from anyio.abc import Process

from mcp_servers._run import READY_PREFIX
from tests.mcp_servers._helpers import (
    READY_TIMEOUT,
    REPO_ROOT,
    Launcher,
    ServerProcess,
    read_line,
    server_command,
    stop_process,
)


@pytest.fixture
async def launch() -> AsyncIterator[Launcher]:
    """Start `python -m mcp_servers.<module> --transport <transport> --port 0` and await its READY line.

    Every started process is stopped (SIGTERM, bounded wait, SIGKILL) when the test ends.
    """
    started: list[Process] = []

    async def _launch(module: str, transport: str = "streamable-http", *extra: str) -> ServerProcess:
        process = await anyio.open_process(
            server_command(module, transport, *extra), cwd=REPO_ROOT, stdout=PIPE, stderr=None
        )
        started.append(process)
        assert process.stdout is not None
        with anyio.fail_after(READY_TIMEOUT):
            line = (await read_line(process.stdout)).decode()
        prefix, _, url = line.strip().partition(" ")
        assert prefix == READY_PREFIX, line
        return ServerProcess(process=process, url=url)

    try:
        yield _launch
    finally:
        for process in started:
            await stop_process(process)
            await process.aclose()
