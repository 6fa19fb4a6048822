"""`ServerConnection`: the one long-lived MCP session of one server, kept alive by one owner task.

The mcp SDK requires a `Client` to be entered and exited in the same task, so `run` (the owner task)
opens the session, serves it and closes it, and reconnects with backoff whenever it is lost, until
`close`. Callers borrow the session from their own tasks (the SDK correlates responses by id, so calls
run concurrently); one that sees it die tells the owner (`_lose`). Where the connection is, is one
`ConnectionState` (`smg.mcp.runtime.state`): every change is a checked transition, and the session is
lent exactly while CONNECTED. Tool lists are kept by `smg.mcp.runtime.listing.ToolListing`.
"""

from __future__ import annotations

import functools
import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.types import ToolListChangedNotification

from smg.mcp.errors import McpServerUnavailable
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import scrub
from smg.mcp.runtime.calls import send_call
from smg.mcp.runtime.guarded import GuardedCalls
from smg.mcp.runtime.hooks import BreakerLike, McpObserver, NullBreaker, NullMcpObserver, notify
from smg.mcp.runtime.listing import ToolListing
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.runtime.retrying import Attempt, ReconnectPolicy, ReplayPolicy
from smg.mcp.runtime.session import SESSION_GONE, HandshakeTimeout, Session, open_session
from smg.mcp.runtime.state import ConnectionState, StateMachine, is_bug
from smg.mcp.runtime.stdio import StderrPipe
from smg.mcp.runtime.tools import FAILURES, describe, session_lost, watch_list_changed
from smg.mcp.types import Caller, Progress, ServerStatus, ToolInfo, ToolOutcome

logger = logging.getLogger("smg.mcp")
_S = ConnectionState
_NOT_LENT = frozenset(ConnectionState) - {_S.CONNECTED}
_SUBSCRIBE_WAIT_SECS = 5.0
_DOWN_WAIT_SECS = 1.0  # how long a request waits for a server that is known to be down


class ServerConnection:
    """The session of one MCP server. Start `run` in a task group; end it with `close`."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        options: ConnectionOptions | None = None,
        breaker: BreakerLike | None = None,
        observer: McpObserver | None = None,
    ) -> None:
        self.spec = spec
        self._options = options = options or ConnectionOptions()
        self._breaker = breaker or NullBreaker()
        self._observer = observer or NullMcpObserver()
        self._machine: StateMachine[Session] = StateMachine(
            lambda label: notify(self._observer.on_server_state, self.name, label)
        )
        self._reconnects = ReconnectPolicy(options, stopped=self._closing)
        replays = ReplayPolicy(sleep=options.sleep, stopped=self._closing)
        self._calls = GuardedCalls(
            spec.name, breaker=self._breaker, replays=replays, observer=self._observer, clock=options.clock
        )
        self._tools = ToolListing(spec.name, options, observer=self._observer, safe=self._safe)
        self._scope: anyio.CancelScope | None = None
        self._sessions = 0
        self._last_error: str | None = None
        self._pipe: StderrPipe | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> ServerStatus:
        return ServerStatus(
            name=self.name,
            state=self._machine.state.label,
            tools=len(self._tools.cache.tools or ()),
            breaker=self._breaker.state.label,
            last_error=self._last_error,
            reconnects=max(0, self._sessions - 1),
            pid=self._pipe.pid if self._pipe is not None and not self._pipe.exited.is_set() else None,
            extra={"transport": self.spec.transport, "stderr": self._pipe.tail if self._pipe else ()},
        )

    # --- the owner task ---------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, reconnect with backoff; returns after `close` (without reconnects: once the one
        session has ended). Raises only IllegalTransition, which is a bug."""
        with anyio.CancelScope() as self._scope:
            task_status.started()
            try:
                established = await self._session_once() if not self._machine.state.closing else False
                while self._options.reconnect and not self._machine.state.closing:
                    established = await self._reconnects.resume(established, self._session_once)
            finally:
                if self._machine.state is not _S.CLOSED:
                    self._machine.to(_S.CLOSED)

    async def close(self, *, grace: float = 10.0) -> None:
        """Close the session (and stop a stdio child), waiting at most ``grace`` seconds for a graceful
        close and as long again after cancelling the owner task. Idempotent."""
        was = self._machine.state
        if not was.closing:
            self._machine.to(_S.CLOSING)
        if self._scope is None:  # the owner never started: nothing to wait for
            if self._machine.state is not _S.CLOSED:
                self._machine.to(_S.CLOSED)
            return
        if was is not _S.CONNECTED:  # connecting or backing off: no session to close gracefully
            self._scope.cancel()
        with anyio.move_on_after(grace):
            await self._machine.wait_for(_S.CLOSED)
        if self._machine.state is not _S.CLOSED:
            self._scope.cancel()
            with anyio.move_on_after(grace):
                await self._machine.wait_for(_S.CLOSED)

    async def _session_once(self) -> bool:
        """One attempt: open a session and serve it until it is lost; True when it got established."""
        established = False
        try:
            async with open_session(
                self.spec, self._options, message_handler=self._on_message, on_pipe=self._use_pipe
            ) as session:
                established = True
                await self._serve(session)
        except HandshakeTimeout as exc:
            self._failed(str(exc))
        except Exception as exc:  # any failure of a session (SDK, transport, config): the owner goes on
            if is_bug(exc):
                raise
            self._failed(describe(exc))
        self._ended(established)
        return established

    def _use_pipe(self, pipe: StderrPipe | None) -> None:
        self._pipe = pipe

    async def _serve(self, session: Session) -> None:
        self._sessions += 1
        if self._sessions > 1:
            notify(self._observer.on_reconnect, self.name)
            if session.pipe is not None:
                notify(self._observer.on_stdio_restart, self.name)
        self._tools.invalidate("connect" if self._sessions == 1 else "reconnect")
        subscribed = anyio.Event()
        client, sleep = session.client, self._options.sleep
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    functools.partial(self._tools.keep_fresh, client, failed=lambda: self._gone(session))
                )
                tg.start_soon(
                    watch_list_changed, self.name, client, self._tools.invalidate, sleep, subscribed
                )
                if session.pipe is not None:  # stderr EOF: the child is gone, even if no request noticed yet
                    tg.start_soon(
                        self._lose_on, session, session.pipe.exited, "the stdio server process exited"
                    )
                # Only a 404 to the notification stream's GET ends the session from here: a caller whose
                # request met a 404 ends it itself, once its request is resolved (ending it earlier would
                # fail that request as "connection closed", hiding that the server never ran it).
                tg.start_soon(self._lose_on, session, session.ended.on_stream, SESSION_GONE)
                # Lend the session only once list_changed events can reach us, so none is missed.
                with anyio.move_on_after(_SUBSCRIBE_WAIT_SECS):
                    await subscribed.wait()
                if not self._machine.state.closing:
                    self._machine.lend(session)
                    self._last_error = None
                    self._reconnects.wait.forget()  # a wake from before now is answered
                await self._machine.wait_for(*_NOT_LENT)
                tg.cancel_scope.cancel()
        finally:
            self._lose(session, None)  # ended by a failure while lent: stop lending it

    def _ended(self, established: bool) -> None:
        """An attempt is over (the owner has torn it down): the state says how, unless closing."""
        state = self._machine.state
        if state.closing:
            return
        wanted = self._after_loss() if established else _S.FAILED
        if state is not wanted:  # a lost session is RECONNECTING already; a failed retry stays FAILED
            self._machine.to(wanted)

    def _gone(self, session: Session) -> None:
        """A request of ``session`` failed: lose it if the server has ended it."""
        if session.ended.seen:
            self._lose(session, SESSION_GONE)

    async def _lose_on(self, session: Session, event: anyio.Event, reason: str) -> None:
        await event.wait()
        self._lose(session, reason)

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, ToolListChangedNotification):
            self._tools.invalidate("list_changed")

    # --- borrowers (any task) ------------------------------------------------------------------------

    async def list_tools(self, *, refresh: bool = False) -> list[ToolInfo]:
        """The server's tools: cached unless stale, expired or ``refresh``. Raises McpServerUnavailable."""
        session = await self._ready(self._options.ready_timeout)
        if refresh or not self._tools.cache.fresh():
            try:
                await self._tools.refresh(
                    session.client, force=refresh, reason="request" if refresh else None
                )
            except FAILURES as exc:
                if session_lost(exc) or session.ended.seen:
                    self._lose(session, describe(exc))
                raise McpServerUnavailable(self.name, self._safe(describe(exc))) from None
        return self._tools.tools

    async def client(self) -> Client:
        """The lent session's client, for requests other than tool calls (resources, prompts); waits for
        a session as a call does. Raises McpServerUnavailable."""
        return (await self._ready(self._options.ready_timeout)).client

    async def call_tool(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        caller: Caller = "loop",
        progress: Progress | None = None,
    ) -> ToolOutcome:
        """Call ``tool``; failures are outcomes (see `smg.mcp.types.McpRuntime.call_tool`)."""
        return await self._calls.run(tool, caller, lambda: self._attempt(tool, arguments, progress))

    async def _attempt(self, tool: str, arguments: dict[str, Any], progress: Progress | None) -> Attempt:
        """(status, text, whether one more attempt is safe and may help: `smg.mcp.runtime.retrying`)."""
        timeout = self.spec.timeout_for(tool)
        try:
            session = await self._ready(min(timeout, self._options.ready_timeout))
        except McpServerUnavailable as exc:
            return "unavailable", exc.message, False
        end = await send_call(
            self.name, session.client, tool, arguments, timeout_secs=timeout, progress=progress
        )
        if session.ended.seen and end.status == "error":
            # The server refused the call with a 404 for the session: it never ran, so any tool may
            # be sent again, once the owner has opened a new session.
            self._lose(session, SESSION_GONE)
            text = f"MCP server {self.name!r} had ended the session; the call was not run"
            return "unavailable", text, True
        if end.session_lost is not None:
            self._lose(session, end.session_lost)
        replay = end.status == "unavailable" and self._tools.cache.retry_safe(tool)
        return end.status, self._safe(end.text), replay

    async def _ready(self, wait: float) -> Session:
        """The lent session, waiting at most ``wait`` seconds for one. Without one, the caller wakes the
        reconnect (`BackoffWait.wake`); while FAILED it waits only for that attempt (at most
        `_DOWN_WAIT_SECS` from its start), so requests do not each stall on a server that is down, but a
        session just lost is waited for in full (it is usually back at once). Raises McpServerUnavailable."""
        state, waits = self._machine.state, self._reconnects.wait
        watch: AbstractContextManager[None] = nullcontext()
        if self._machine.lent is None and state in (_S.RECONNECTING, _S.FAILED):
            starts_in = waits.wake()
            if state is _S.FAILED:
                wait, watch = min(wait, starts_in + _DOWN_WAIT_SECS), waits.until_attempt_fails()
        with watch:
            await self._machine.borrow(wait)
        if (session := self._machine.lent) is not None:
            return session
        closing = self._machine.state.closing
        reason = self._last_error or ("it is closed" if closing else f"no session within {wait:g} s")
        raise McpServerUnavailable(self.name, reason)

    def _lose(self, session: Session, reason: str | None) -> None:
        """``session`` is dead: stop lending it, which wakes the owner (a no-op once it is not lent)."""
        if self._machine.lent is not session:
            return
        if reason is not None:
            self._last_error = self._safe(reason)
        self._machine.to(self._after_loss())

    def _after_loss(self) -> ConnectionState:
        """Where an established session's end leads: reconnecting, or closing without reconnects."""
        return _S.RECONNECTING if self._options.reconnect else _S.CLOSING

    def _closing(self) -> bool:
        return self._machine.state.closing

    def _safe(self, text: str) -> str:
        """``text`` without the secret parts of the server's URL (failure texts may quote the URL)."""
        return scrub(text, self.spec.url)

    def _failed(self, reason: str) -> None:
        """Record why an attempt or a session failed (the state follows in `_ended`)."""
        self._last_error = reason = self._safe(reason)
        if not self._machine.state.closing:
            level = logging.DEBUG if self._machine.state is _S.FAILED else logging.WARNING  # once per outage
            logger.log(level, "MCP server %s: session failed: %s", self.name, reason)
