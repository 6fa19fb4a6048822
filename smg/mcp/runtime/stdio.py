"""Supervision of stdio MCP servers: how the child is launched and where its stderr goes.

The SDK's stdio client spawns the child (in its own session/process group, and kills that group when
the session closes). smg launches the configured command through `smg.mcp.runtime.stdio_exec`, which arms
``PR_SET_PDEATHSIG`` so the child dies with the gateway even on SIGKILL, and reports the child's PID on
stderr. `StderrPipe` gives the child a pipe for stderr, logs every line to the ``smg.mcp`` logger, picks
up the PID line, keeps the child's last few lines (for error messages), and tells when the child (and
everything holding the pipe) has exited.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TextIO

import anyio
from mcp import StdioServerParameters

from smg.mcp.registry.config import ServerSpec, resolve_secrets
from smg.mcp.runtime.stdio_exec import PID_PREFIX

logger = logging.getLogger("smg.mcp")

_EXEC_SCRIPT = str(Path(__file__).with_name("stdio_exec.py"))
_MAX_LINE = 4096
_TAIL_LINES = 5  # enough for the end of a Python traceback: the failing line and the exception
_TAIL_LINE_CHARS = 200
_DRAIN_BYTES = 1 << 20  # read at most this much left in the pipe when closing


def stdio_parameters(spec: ServerSpec, environ: Mapping[str, str]) -> StdioServerParameters:
    """SDK launch parameters for a stdio ``spec``: its command behind the death-signal launcher, its env
    with ``${VAR}`` references resolved from ``environ``. Raises UnresolvedSecret."""
    assert spec.command is not None  # ServerSpec guarantees a command for the stdio transport
    env = resolve_secrets(spec.env, environ, server=spec.name)
    launcher = ["-I", _EXEC_SCRIPT, "--parent", str(os.getpid()), "--"]
    return StdioServerParameters(command=sys.executable, args=[*launcher, spec.command, *spec.args], env=env)


class StderrPipe:
    """A pipe for one child's stderr, read by a task of its own until EOF or until the pipe is closed.

    Use: ``async with StderrPipe(name) as pipe``, spawn the child with ``errlog=pipe.errlog``, then call
    `spawned` (closes this process's copy of the write end, so EOF means "the child is gone"). On exit,
    whatever the child wrote and was not read yet is read (bounded), so `tail` then holds its last lines.
    """

    def __init__(self, server: str) -> None:
        self._server = server
        self.pid: int | None = None
        self.exited = anyio.Event()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._read_fd: int | None = read_fd
        self._pending = b""
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self.errlog: TextIO | None = os.fdopen(write_fd, "w")
        self._tg = anyio.create_task_group()

    async def __aenter__(self) -> StderrPipe:
        await self._tg.__aenter__()
        self._tg.start_soon(self._read)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        self.spawned()
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            if self._read_fd is not None:
                self._drain(self._read_fd)
                os.close(self._read_fd)
                self._read_fd = None

    @property
    def tail(self) -> tuple[str, ...]:
        """The child's last few non-empty stderr lines (at most 5, each cut at 200 characters), oldest
        first; the launcher's PID line is not one of them."""
        return tuple(self._tail)

    def spawned(self) -> None:
        """Close the parent's write end (idempotent); call once the child has been started."""
        if self.errlog is not None:
            self.errlog.close()
            self.errlog = None

    async def _read(self) -> None:
        assert self._read_fd is not None
        fd = self._read_fd
        try:
            while True:
                await anyio.wait_readable(fd)
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                self._feed(chunk)
            self._flush()
        finally:
            self.exited.set()

    def _drain(self, fd: int) -> None:
        """Read what is left in the pipe without waiting (the reader task is gone by now)."""
        for _ in range(_DRAIN_BYTES // 65536):
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._feed(chunk)
        self._flush()

    def _feed(self, chunk: bytes) -> None:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            self._line(line)
        if len(self._pending) > _MAX_LINE:
            self._line(self._pending)
            self._pending = b""

    def _flush(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = b""

    def _line(self, raw: bytes) -> None:
        text = raw[:_MAX_LINE].decode("utf-8", "replace").rstrip("\r")
        if self.pid is None and text.startswith(PID_PREFIX + " "):
            self.pid = int(text.split()[1])
            return
        if text.strip():
            self._tail.append(text.strip()[:_TAIL_LINE_CHARS])
        logger.info("MCP server %s stderr: %s", self._server, text, extra={"mcp_server": self._server})
