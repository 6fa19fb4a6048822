"""Helpers for the example-server tests: result text and real processes on 127.0.0.1.

Every helper that waits is bounded: callers wrap reads in `anyio.fail_after`, and `stop_process`
bounds its own waits.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, Process
from mcp.types import CallToolResult, TextContent

from mcp_servers._run import GRACEFUL_SHUTDOWN_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
STOP_TIMEOUT = GRACEFUL_SHUTDOWN_SECONDS + 10.0


def text_of(result: CallToolResult, index: int = 0) -> str:
    """The text of content block `index`, which must be a text block."""
    block = result.content[index]
    assert isinstance(block, TextContent), block
    return block.text


def server_command(module: str, transport: str, *extra: str) -> list[str]:
    """argv that runs `mcp_servers.<module>` with `transport` (HTTP ones on a free 127.0.0.1 port)."""
    args = [sys.executable, "-m", f"mcp_servers.{module}", "--transport", transport]
    if transport != "stdio":
        args += ["--host", "127.0.0.1", "--port", "0"]
    return [*args, *extra]


async def read_line(stream: ByteReceiveStream) -> bytes:
    """Read up to and including the first newline.

    Raises:
        AssertionError: if the stream ends first.
    """
    data = b""
    while b"\n" not in data:
        try:
            data += await stream.receive()
        except anyio.EndOfStream:
            raise AssertionError(f"stream ended before a full line; got {data!r}") from None
    return data


async def read_rest(stream: ByteReceiveStream) -> bytes:
    """Read until EOF."""
    data = b""
    while True:
        try:
            data += await stream.receive()
        except anyio.EndOfStream:
            return data


async def stop_process(process: Process) -> int:
    """SIGTERM, wait at most STOP_TIMEOUT, then SIGKILL; return the exit status."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT):
            await process.wait()
    if process.returncode is None:
        process.kill()
        with anyio.fail_after(STOP_TIMEOUT):
            await process.wait()
    returncode = process.returncode
    assert returncode is not None
    return returncode


@dataclass
class ServerProcess:
    """A started HTTP server: its process and the URL from its READY line."""

    process: Process
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> int:
        """Stop the server (SIGTERM first) and return its exit status."""
        return await stop_process(self.process)

    async def wait_exit(self) -> int:
        """Wait (at most STOP_TIMEOUT) for the server to exit on its own; return its exit status."""
        with anyio.fail_after(STOP_TIMEOUT):
            return await self.process.wait()


Launcher = Callable[..., Awaitable[ServerProcess]]
"""The `launch` fixture: `await launch(module, transport="streamable-http", *extra_args)`."""
