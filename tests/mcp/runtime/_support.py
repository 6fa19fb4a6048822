"""Helpers for the MCP runtime tests: specs of the example servers, a pool factory, process checks."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from smg.mcp.registry.config import ServerSpec
from smg.mcp.runtime.hooks import Backoff
from smg.mcp.runtime.pool import McpPool
from smg.settings import BreakerSettings
from smg.workers.breaker import CircuitBreaker

WAIT = 30.0  # bound of every poll; generous, since starting an example server costs about a second
FAST_BACKOFF = Backoff(initial=0.05, maximum=0.5)


def stdio_spec(module: str, name: str | None = None, **extra: Any) -> ServerSpec:
    args = ("-m", f"mcp_servers.{module}", "--transport", "stdio", "--log-level", "WARNING")
    return ServerSpec(name=name or module, transport="stdio", command=sys.executable, args=args, **extra)


def http_spec(name: str, url: str, **extra: Any) -> ServerSpec:
    transport = "sse" if url.endswith("/sse") else "streamable-http"
    return ServerSpec(name=name, transport=transport, url=url, **extra)


def make_pool(**options: Any) -> McpPool:
    options.setdefault("backoff", FAST_BACKOFF)
    options.setdefault("ready_timeout", WAIT)
    options.setdefault(
        "breaker_factory", lambda _name: CircuitBreaker(BreakerSettings(failure_threshold=100))
    )
    return McpPool(**options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, wait: float = WAIT
) -> None:
    """Poll ``check`` until it is true; fail after ``wait`` seconds."""
    with anyio.fail_after(wait):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await anyio.sleep(0.05)


@dataclass
class RecordingObserver:
    """An McpObserver that keeps every event as a tuple."""

    events: list[tuple[Any, ...]] = field(default_factory=list)

    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        self.events.append(("call", server, tool, status))

    def on_reconnect(self, server: str) -> None:
        self.events.append(("reconnect", server))

    def on_stdio_restart(self, server: str) -> None:
        self.events.append(("stdio_restart", server))

    def on_tools_refreshed(self, server: str, reason: str) -> None:
        self.events.append(("refreshed", server, reason))

    def on_server_state(self, server: str, state: str) -> None:
        self.events.append(("state", server, state))

    def on_breaker(self, server: str, state: str) -> None:
        self.events.append(("breaker", server, state))


@dataclass
class Sleep:
    """One wait of the connection on the fake clock: how long it asked for, and how it ended."""

    secs: float
    ended: str = "waiting"  # "elapsed" when the fake clock reached its end, "cut" when cancelled


@dataclass
class FakeTime:
    """A clock and a sleep for `ConnectionOptions`: time moves only by `advance`."""

    now: float = 0.0
    sleeps: list[Sleep] = field(default_factory=list)
    _moved: anyio.Event = field(default_factory=anyio.Event)

    def clock(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        record = Sleep(secs)
        self.sleeps.append(record)
        end = self.now + secs
        try:
            while self.now < end:
                await self._moved.wait()
        except BaseException:
            record.ended = "cut"
            raise
        record.ended = "elapsed"

    def advance(self, secs: float) -> None:
        self.now += secs
        moved, self._moved = self._moved, anyio.Event()
        moved.set()

    def waiting(self, secs: float) -> bool:
        return any(s.secs == secs and s.ended == "waiting" for s in self.sleeps)
