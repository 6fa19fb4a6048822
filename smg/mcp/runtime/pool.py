"""`McpPool`: every registered server's `ServerConnection`, behind the `McpRuntime` interface.

Use it as ``async with McpPool(...) as pool``: the owner task of every connection runs in the pool's task
group, so the task that enters the pool owns the sessions (the SDK's same-task rule holds because each
owner task enters and exits its own session). Any task may call `list_tools` / `call_tool` concurrently.
A server being registered gets its connection before it is served (`open_candidate`, see
`smg.mcp.runtime.candidate`), so the session that was validated is the one that serves.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
from mcp import Client

from smg.mcp.errors import McpServerNotFound, McpServerUnavailable
from smg.mcp.registry.config import ServerSpec
from smg.mcp.runtime.candidate import Candidate, HeldObserver
from smg.mcp.runtime.connection import ServerConnection
from smg.mcp.runtime.convert import truncate_text
from smg.mcp.runtime.framing import message_limit
from smg.mcp.runtime.hooks import (
    Backoff,
    BreakerFactory,
    HeadersHook,
    McpObserver,
    NullMcpObserver,
    Sleep,
    logger,
)
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.runtime.watch import ListWatch
from smg.mcp.types import Caller, Progress, ServerStatus, ToolInfo, ToolOutcome

_DEFAULT = ConnectionOptions()


class McpPool:
    """One long-lived session per MCP server; implements `smg.mcp.types.McpRuntime`.

    The connection settings (`ConnectionOptions`, defaults from there) become one frozen value shared by
    every connection; ``max_output_bytes`` also sets how large a message a server may send."""

    def __init__(
        self,
        *,
        observer: McpObserver | None = None,
        breaker_factory: BreakerFactory | None = None,
        tools_ttl: float = _DEFAULT.tools_ttl,
        backoff: Backoff | None = None,
        wake_interval: float = _DEFAULT.wake_interval,
        sleep: Sleep = _DEFAULT.sleep,
        clock: Callable[[], float] = _DEFAULT.clock,
        connect_timeout: float = _DEFAULT.connect_timeout,
        ready_timeout: float = _DEFAULT.ready_timeout,
        close_timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
        headers_hook: HeadersHook | None = None,
        max_output_bytes: int = 0,
    ) -> None:
        self.tool_lists = ListWatch(observer or NullMcpObserver())  # upstream tool-list changes
        self._observer: McpObserver = self.tool_lists
        self._breaker_factory = breaker_factory
        self._options = ConnectionOptions(
            tools_ttl=tools_ttl,
            backoff=backoff or _DEFAULT.backoff,
            wake_interval=wake_interval,
            sleep=sleep,
            clock=clock,
            connect_timeout=connect_timeout,
            ready_timeout=ready_timeout,
            environ=environ,
            headers_hook=headers_hook,
            max_message_bytes=message_limit(max_output_bytes),
        )
        self._close_timeout = close_timeout
        self._max_output_bytes = max_output_bytes
        self._connections: dict[str, ServerConnection] = {}
        self._candidates: builtins.list[Candidate] = []
        self._tg: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()

    @property
    def environ(self) -> Mapping[str, str] | None:
        """Where the connections resolve ``${VAR}`` references (None: the process environment)."""
        return self._options.environ

    async def __aenter__(self) -> McpPool:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            self._tg.cancel_scope.cancel()
            tg, self._tg = self._tg, None
        return await tg.__aexit__(exc_type, exc, tb)

    # --- membership -----------------------------------------------------------------------------

    async def reconcile(self, specs: Iterable[ServerSpec]) -> None:
        """Make the pool serve exactly ``specs``: open new servers, close removed ones, reopen changed
        ones. Returns once every change is applied (new sessions connect in the background)."""
        wanted = {spec.name: spec for spec in specs}
        async with self._lock:
            if self._tg is None:
                raise RuntimeError("McpPool is not open: use `async with McpPool(...)`")
            stale = [c for name, c in self._connections.items() if wanted.get(name) != c.spec]
            for connection in stale:
                del self._connections[connection.name]
            await self._close_all(stale)
            for name, spec in wanted.items():
                if name in self._connections:
                    continue
                candidate = next((c for c in self._candidates if c.connection.spec == spec), None)
                if candidate is not None:  # the connection its registration was validated on
                    self._candidates.remove(candidate)
                    self._connections[name] = candidate.connection
                    candidate.observer.release()
                else:
                    self._connections[name] = await self._start(spec, self._observer)

    async def open_candidate(self, spec: ServerSpec) -> Candidate:
        """Open a connection to ``spec`` that is not served: `reconcile` adopts it when given ``spec``,
        else `discard` closes it. Its telemetry is held back until it is adopted."""
        observer = HeldObserver(self._observer)
        candidate = Candidate(await self._start(spec, observer), observer)
        self._candidates.append(candidate)
        return candidate

    async def discard(self, candidate: Candidate) -> None:
        """Close ``candidate`` unless it was adopted (then: nothing). Idempotent."""
        if candidate in self._candidates:
            self._candidates.remove(candidate)
            await candidate.connection.close(grace=self._close_timeout)

    async def _start(self, spec: ServerSpec, observer: McpObserver) -> ServerConnection:
        if self._tg is None:
            raise RuntimeError("McpPool is not open: use `async with McpPool(...)`")
        breaker = self._breaker_factory(spec.name) if self._breaker_factory else None
        connection = ServerConnection(spec, options=self._options, breaker=breaker, observer=observer)
        await self._tg.start(connection.run)
        return connection

    async def aclose(self) -> None:
        """Close every session and stop every stdio child (each bounded by ``close_timeout``)."""
        async with self._lock:
            connections = builtins.list(self._connections.values())
            connections += [candidate.connection for candidate in self._candidates]
            self._connections.clear()
            self._candidates.clear()
            await self._close_all(connections)

    async def _close_all(self, connections: builtins.list[ServerConnection]) -> None:
        async with anyio.create_task_group() as tg:
            for connection in connections:
                tg.start_soon(functools.partial(connection.close, grace=self._close_timeout))

    # --- McpRuntime -----------------------------------------------------------------------------

    def statuses(self) -> builtins.list[ServerStatus]:
        return [self._connections[name].status() for name in sorted(self._connections)]

    async def list_tools(
        self, servers: builtins.list[str] | None = None, *, refresh: bool = False
    ) -> dict[str, builtins.list[ToolInfo]]:
        names = sorted(self._connections) if servers is None else servers
        connections = [self._get(name) for name in names]
        found: dict[str, builtins.list[ToolInfo]] = {}
        failed: dict[str, McpServerUnavailable] = {}

        async def one(connection: ServerConnection) -> None:
            try:
                found[connection.name] = await connection.list_tools(refresh=refresh)
            except McpServerUnavailable as exc:
                failed[connection.name] = exc

        async with anyio.create_task_group() as tg:
            for connection in connections:
                tg.start_soon(one, connection)
        for connection in connections:
            error = failed.get(connection.name)
            if error is None:
                continue
            if connection.spec.required:
                raise error
            logger.warning("MCP server %s left out of the tool list: %s", connection.name, error.message)
        return {
            connection.name: found[connection.name] for connection in connections if connection.name in found
        }

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        caller: Caller = "loop",
        progress: Progress | None = None,
    ) -> ToolOutcome:
        """Call ``tool``; the outcome's text is cut to ``max_output_bytes`` (0: not cut) with a marker."""
        outcome = await self._get(server).call_tool(tool, arguments, caller=caller, progress=progress)
        text = truncate_text(outcome.text, self._max_output_bytes)
        return outcome if text is outcome.text else dataclasses.replace(outcome, text=text)

    async def client(self, server: str) -> Client:
        """``server``'s session client, for requests other than tool calls (resources, prompts). Raises
        McpServerNotFound and McpServerUnavailable."""
        return await self._get(server).client()

    def _get(self, name: str) -> ServerConnection:
        connection = self._connections.get(name)
        if connection is None:
            raise McpServerNotFound(name)
        return connection
