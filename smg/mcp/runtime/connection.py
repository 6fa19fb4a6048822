"""`ServerConnection`: the one long-lived MCP session of one server, kept alive by one owner task.

Ownership: the mcp SDK requires a `Client` to be entered and exited in the same task, so `run` (the owner
task) opens the session, serves it, and closes it; it reconnects with backoff whenever the session is
lost, until `close`. Callers borrow the open session from their own tasks: a JSON-RPC request can be sent
from any task once the session is entered (the SDK's dispatcher correlates responses by id), so calls
are really concurrent and never queue behind each other. A caller that sees the session die tells the
owner (`_lose`), which tears it down and reconnects.

Tool lists are cached and go stale on ``tools/list_changed`` (via ``subscriptions/listen`` or the message
handler), on the TTL and after every (re)connect; the owner refreshes them, `list_tools` on demand.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.types import ToolListChangedNotification

from smg.mcp.errors import McpServerUnavailable
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import scrub
from smg.mcp.runtime.calls import send_call
from smg.mcp.runtime.framing import DEFAULT_MESSAGE_LIMIT
from smg.mcp.runtime.hooks import (
    Backoff,
    BreakerLike,
    HeadersHook,
    McpObserver,
    NullBreaker,
    NullMcpObserver,
    Sleep,
    notify,
)
from smg.mcp.runtime.retrying import Attempt, ReconnectPolicy, ReplayPolicy
from smg.mcp.runtime.stdio import StderrPipe
from smg.mcp.runtime.tools import FAILURES, ToolCache, describe, fetch_tools, session_lost, watch_list_changed
from smg.mcp.runtime.transports import open_transport
from smg.mcp.types import ServerState, ServerStatus, ToolInfo, ToolOutcome, ToolStatus

logger = logging.getLogger("smg.mcp")
_SUBSCRIBE_WAIT_SECS = 5.0


_DOWN_WAIT_SECS = 1.0  # how long a request waits for a server that is known to be down
_SESSION_GONE = "the server ended the MCP session (HTTP 404)"


class ServerConnection:
    """The session of one MCP server. Start `run` in a task group; end it with `close`."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        breaker: BreakerLike | None = None,
        observer: McpObserver | None = None,
        tools_ttl: float = 300.0,
        backoff: Backoff | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        connect_timeout: float = 30.0,
        ready_timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
        reconnect: bool = True,
        headers_hook: HeadersHook | None = None,
        max_message_bytes: int = DEFAULT_MESSAGE_LIMIT,
    ) -> None:
        self.spec = spec
        self._reconnect = reconnect
        self._breaker = breaker or NullBreaker()
        self._observer = observer or NullMcpObserver()
        self._sleep = sleep
        self._reconnects = ReconnectPolicy(
            backoff or Backoff(), sleep=sleep, stopped=lambda: self._closing, on_backoff=self._backing_off
        )
        self._replays = ReplayPolicy(sleep=sleep, stopped=lambda: self._closing)
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._ready_timeout = ready_timeout
        self._environ = os.environ if environ is None else environ
        self._headers_hook = headers_hook
        self._max_message_bytes = max_message_bytes
        self._tools = ToolCache(ttl=tools_ttl, clock=clock)
        self._state: ServerState = "connecting"
        self._client: Client | None = None
        self._connected = anyio.Event()
        self._wake = anyio.Event()
        self._refresh_wanted = anyio.Event()
        self._closing = False
        self._done = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._sessions = 0
        self._last_error: str | None = None
        self._pipe: StderrPipe | None = None
        self._gone = anyio.Event()  # set once the server answers 404 to a request of the current session

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> ServerStatus:
        return ServerStatus(
            name=self.name,
            state=self._state,
            tools=len(self._tools.tools or ()),
            breaker=self._breaker.state.label,
            last_error=self._last_error,
            reconnects=max(0, self._sessions - 1),
            pid=self._pipe.pid if self._pipe is not None and not self._pipe.exited.is_set() else None,
            extra={"transport": self.spec.transport, "stderr": self._pipe.tail if self._pipe else ()},
        )

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, reconnect with backoff; returns after `close`. Never raises."""
        with anyio.CancelScope() as self._scope:
            task_status.started()
            try:
                established = await self._session_once() if not self._closing else False
                while self._reconnect and not self._closing:
                    established = await self._reconnects.resume(established, self._session_once)
            finally:
                self._client = None
                self._set_state("closed")
                self._done.set()
                self._connected.set()  # wakes `_ready` waiters: they see there is no session left

    def _backing_off(self, established: bool) -> None:
        self._set_state("reconnecting" if established else "failed")

    async def close(self, *, grace: float = 10.0) -> None:
        """Close the session (and stop a stdio child), waiting at most ``grace`` seconds for a graceful
        close and as long again after cancelling the owner task. Idempotent."""
        self._closing = True
        self._wake.set()
        if self._scope is None:
            self._done.set()
            return
        if self._client is None:  # connecting or backing off: nothing to close gracefully
            self._scope.cancel()
        with anyio.move_on_after(grace):
            await self._done.wait()
        if not self._done.is_set():
            self._scope.cancel()
            with anyio.move_on_after(grace):
                await self._done.wait()

    async def _session_once(self) -> bool:
        """One session from connect to loss; True when it got established."""
        self._wake = anyio.Event()
        self._gone = gone = anyio.Event()
        stream_gone = anyio.Event()

        def on_session_gone(method: str) -> None:
            gone.set()
            if method == "GET":  # the notification stream, which no caller is waiting on
                stream_gone.set()

        established = False
        try:
            async with AsyncExitStack() as stack:
                transport, pipe = await open_transport(
                    self.spec,
                    self._environ,
                    stack,
                    headers_hook=self._headers_hook,
                    max_message_bytes=self._max_message_bytes,
                    on_session_gone=on_session_gone,
                )
                self._pipe = pipe
                client = Client(transport, cache=None, message_handler=self._on_message)
                with anyio.CancelScope(deadline=anyio.current_time() + self._connect_timeout) as deadline:
                    async with client:
                        deadline.deadline = math.inf
                        if pipe is not None:
                            pipe.spawned()
                        established = True
                        await self._serve(client, pipe.exited if pipe is not None else None, stream_gone)
                if deadline.cancelled_caught:
                    self._failed(f"timed out: no answer to initialize within {self._connect_timeout:g} s")
        except Exception as exc:  # noqa: BLE001  # any failure of a session (SDK, transport, config) means reconnect; the owner must not die
            self._failed(describe(exc))
        return established

    async def _serve(
        self, client: Client, child_exited: anyio.Event | None, stream_gone: anyio.Event
    ) -> None:
        self._sessions += 1
        if self._sessions > 1:
            notify(self._observer.on_reconnect, self.name)
            if child_exited is not None:
                notify(self._observer.on_stdio_restart, self.name)
        self._invalidate("connect" if self._sessions == 1 else "reconnect")
        subscribed = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._refresher, client)
                tg.start_soon(
                    watch_list_changed, self.name, client, self._invalidate, self._sleep, subscribed
                )
                if child_exited is not None:
                    tg.start_soon(self._watch_child, client, child_exited)
                tg.start_soon(self._watch_gone, client, stream_gone)
                # Lend the session only once list_changed events can reach us, so none is missed.
                with anyio.move_on_after(_SUBSCRIBE_WAIT_SECS):
                    await subscribed.wait()
                self._client, self._last_error = client, None
                self._set_state("connected")
                self._connected.set()
                await self._wake.wait()
                tg.cancel_scope.cancel()
        finally:
            self._drop(client)

    async def _refresher(self, client: Client) -> None:
        while True:
            await self._refresh_wanted.wait()
            self._refresh_wanted = anyio.Event()
            try:
                await self._refresh(client, force=False)
            except FAILURES as exc:
                reason = self._safe(describe(exc))
                logger.warning("MCP server %s: refreshing the tool list failed: %s", self.name, reason)
                if self._gone.is_set():
                    self._lose(client, _SESSION_GONE)

    async def _watch_child(self, client: Client, exited: anyio.Event) -> None:
        await exited.wait()  # stderr EOF: the child is gone, even if no request noticed yet
        self._lose(client, "the stdio server process exited")

    async def _watch_gone(self, client: Client, stream_gone: anyio.Event) -> None:
        # Only a 404 to the notification stream's GET ends the session from here: a caller whose
        # request met a 404 ends it itself, once its request is resolved (ending it earlier would fail
        # that request as "connection closed", hiding that the server never ran it).
        await stream_gone.wait()
        self._lose(client, _SESSION_GONE)

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, ToolListChangedNotification):
            self._invalidate("list_changed")

    async def list_tools(self, *, refresh: bool = False) -> list[ToolInfo]:
        """The server's tools: cached unless stale, expired or ``refresh``. Raises McpServerUnavailable."""
        client = await self._ready(self._ready_timeout)
        if refresh or not self._tools.fresh():
            try:
                await self._refresh(client, force=refresh, reason="request" if refresh else None)
            except FAILURES as exc:
                if session_lost(exc) or self._gone.is_set():
                    self._lose(client, describe(exc))
                raise McpServerUnavailable(self.name, self._safe(describe(exc))) from None
        return list(self._tools.tools or ())

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Call ``tool``; failures are outcomes (see `smg.mcp.types.McpRuntime.call_tool`)."""
        start = self._clock()
        if not self._breaker.allows():
            text = f"the circuit breaker of MCP server {self.name!r} is open"
            return self._finish(tool, "breaker_open", text, start, attempts=0)
        (status, text, _), attempts = await self._replays.run(lambda: self._attempt(tool, arguments))
        before = self._breaker.state.label
        if status in ("unavailable", "timeout"):
            self._breaker.record_failure()
        else:
            self._breaker.record_success()
        if self._breaker.state.label != before:
            notify(self._observer.on_breaker, self.name, self._breaker.state.label)
        return self._finish(tool, status, text, start, attempts=attempts)

    async def _attempt(self, tool: str, arguments: dict[str, Any]) -> Attempt:
        """(status, text, whether one more attempt is safe and may help: `smg.mcp.runtime.retrying`)."""
        timeout = self.spec.timeout_for(tool)
        try:
            client = await self._ready(min(timeout, self._ready_timeout))
        except McpServerUnavailable as exc:
            return "unavailable", exc.message, False
        gone = self._gone  # the event of ``client``'s session: no await since `_ready` returned it
        end = await send_call(self.name, client, tool, arguments, timeout_secs=timeout)
        if gone.is_set() and end.status == "error":
            # The server refused the call with a 404 for the session: it never ran, so any tool may
            # be sent again, once the owner has opened a new session.
            self._lose(client, _SESSION_GONE)
            text = f"MCP server {self.name!r} had ended the session; the call was not run"
            return "unavailable", text, True
        if end.session_lost is not None:
            self._lose(client, end.session_lost)
        replay = end.status == "unavailable" and self._tools.retry_safe(tool)
        return end.status, self._safe(end.text), replay

    async def _ready(self, wait: float) -> Client:
        """The open session, waiting at most ``wait`` seconds for one (at most `_DOWN_WAIT_SECS` once a
        connect attempt has failed, so requests do not each stall on a server that is down; a session that
        was just lost is waited for in full, since it is usually back at once).
        Raises McpServerUnavailable."""
        client = self._client
        if client is not None and not (self._closing or self._done.is_set()):
            return client  # the common case, without setting up a cancel scope
        if self._state == "failed":
            wait = min(wait, _DOWN_WAIT_SECS)
        with anyio.move_on_after(wait):
            while not (self._closing or self._done.is_set()):
                client = self._client
                if client is not None:
                    return client
                await self._connected.wait()
        reason = self._last_error or ("it is closed" if self._closing else f"no session within {wait:g} s")
        raise McpServerUnavailable(self.name, reason)

    async def _refresh(self, client: Client, *, force: bool, reason: str | None = None) -> None:
        async with self._tools.lock:
            if not force and self._tools.fresh():
                return
            generation, why = self._tools.generation, reason or self._tools.reason
            with anyio.fail_after(self._ready_timeout + self._connect_timeout):
                tools = await fetch_tools(self.name, client)
            self._tools.store(tools, generation)
        notify(self._observer.on_tools_refreshed, self.name, why)

    def _invalidate(self, reason: str) -> None:
        self._tools.invalidate(reason)
        self._refresh_wanted.set()

    def _lose(self, client: Client, reason: str) -> None:
        """Tell the owner that ``client``'s session is dead (a no-op if it already moved on)."""
        if self._client is client:
            self._last_error = self._safe(reason)
            self._drop(client)
            self._wake.set()

    def _drop(self, client: Client) -> None:
        if self._client is client:
            self._client = None
            self._connected = anyio.Event()

    def _safe(self, text: str) -> str:
        """``text`` without the secret parts of the server's URL (failure texts may quote the URL)."""
        return scrub(text, self.spec.url)

    def _failed(self, reason: str) -> None:
        reason = self._safe(reason)
        self._last_error = reason
        if not self._closing:
            level = logging.DEBUG if self._state == "failed" else logging.WARNING  # once per outage
            logger.log(level, "MCP server %s: session failed: %s", self.name, reason)
            self._set_state("failed")

    def _set_state(self, state: ServerState) -> None:
        if state != self._state:
            self._state = state
            notify(self._observer.on_server_state, self.name, state)

    def _finish(
        self, tool: str, status: ToolStatus, text: str, start: float, *, attempts: int
    ) -> ToolOutcome:
        duration = self._clock() - start
        notify(self._observer.on_tool_call, self.name, tool, status, duration)
        return ToolOutcome(self.name, tool, status, text, duration, attempts=attempts)
