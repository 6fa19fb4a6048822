"""The states of one MCP server's connection, the transitions allowed between them, and waiting for one.

    CONNECTING    ─► CONNECTED | FAILED | RECONNECTING
    CONNECTED     ─► RECONNECTING
    RECONNECTING  ─► CONNECTED | FAILED
    FAILED        ─► CONNECTED | RECONNECTING
    any but CLOSED ─► CLOSING ─► CLOSED      any but CLOSED ─► CLOSED (the owner task ended)

A session is lent to callers exactly while the state is CONNECTED. RECONNECTING and FAILED are the two
ways of having no session while the owner task keeps trying: waiting out the backoff or opening the next
session. They differ in how the previous attempt ended (a session had been established, or it had not),
which is what the admin API shows. `TRANSITIONS` is the whole table; `StateMachine.to` checks every step
against it and raises `IllegalTransition` for any other, which is a bug in the connection, never a fault
of the server.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import anyio

from smg.mcp.types import ServerState


class ConnectionState(enum.Enum):
    """Where a connection is; `label` is what the admin API and the observer see."""

    CONNECTING = "connecting"  # opening the first session
    CONNECTED = "connected"  # a session is open and lent to callers
    RECONNECTING = "reconnecting"  # an established session ended; backing off, or opening the next one
    FAILED = "failed"  # the last attempt could not establish a session; backing off, or trying again
    CLOSING = "closing"  # closing was asked for (or the session ended with no reconnect); none is lent
    CLOSED = "closed"  # the owner task has ended: terminal

    @property
    def label(self) -> ServerState:
        """The public state: a closing connection already reads ``closed`` (it lends nothing any more)."""
        return _LABELS[self]

    @property
    def closing(self) -> bool:
        """Whether the connection is closing or closed: no session will be opened or lent again."""
        return self in (ConnectionState.CLOSING, ConnectionState.CLOSED)


_S = ConnectionState
T = TypeVar("T")
_LABELS: Mapping[ConnectionState, ServerState] = {
    _S.CONNECTING: "connecting",
    _S.CONNECTED: "connected",
    _S.RECONNECTING: "reconnecting",
    _S.FAILED: "failed",
    _S.CLOSING: "closed",
    _S.CLOSED: "closed",
}

TRANSITIONS: Mapping[ConnectionState, frozenset[ConnectionState]] = {
    # A session got established and lent / the attempt failed / the established session ended before
    # it was lent / closing asked for / the owner task ended (cancelled, or no reconnect).
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.FAILED, _S.RECONNECTING, _S.CLOSING, _S.CLOSED}),
    # The session was lost (the owner reconnects) / lost with no reconnect, or closing asked for.
    _S.CONNECTED: frozenset({_S.RECONNECTING, _S.CLOSING, _S.CLOSED}),
    # A new session is lent / the next attempt failed.
    _S.RECONNECTING: frozenset({_S.CONNECTED, _S.FAILED, _S.CLOSING, _S.CLOSED}),
    # A new session is lent / one got established but ended before it was lent.
    _S.FAILED: frozenset({_S.CONNECTED, _S.RECONNECTING, _S.CLOSING, _S.CLOSED}),
    # The owner task ended.
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}


class IllegalTransition(Exception):
    """A transition `TRANSITIONS` does not allow was asked for: a bug in the connection, not a server
    fault, so the owner task lets it propagate instead of treating it as a failed session."""

    def __init__(self, current: ConnectionState, wanted: ConnectionState) -> None:
        super().__init__(f"MCP connection state {current.name} cannot go to {wanted.name}")
        self.current = current
        self.wanted = wanted


def is_bug(exc: BaseException) -> bool:
    """Whether ``exc`` is, or (from a task group) holds, an IllegalTransition."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(IllegalTransition) is not None
    return isinstance(exc, IllegalTransition)


class StateMachine(Generic[T]):
    """The current `ConnectionState` of one connection, and the session it lends (a ``T``), which exists
    exactly while the state is CONNECTED. Every change goes through `to` or `lend`, which check it against
    `TRANSITIONS`, wake the tasks waiting in `wait_for`, and call ``on_label`` when the public label
    changed."""

    def __init__(self, on_label: Callable[[ServerState], None]) -> None:
        self._state = ConnectionState.CONNECTING
        self._lent: T | None = None
        self._on_label = on_label
        self._changed: anyio.Event | None = None  # created by the first waiter, set by the next change

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def lent(self) -> T | None:
        """The session callers may use: set while CONNECTED, else None."""
        return self._lent

    def lend(self, session: T) -> None:
        """Move to CONNECTED, lending ``session``. Raises IllegalTransition."""
        self._move(ConnectionState.CONNECTED, session)

    def to(self, wanted: ConnectionState) -> None:
        """Move to ``wanted`` (not CONNECTED: see `lend`); nothing is lent any more. Raises
        IllegalTransition (the state is left as it was)."""
        if wanted is ConnectionState.CONNECTED:
            raise IllegalTransition(self._state, wanted)
        self._move(wanted, None)

    def _move(self, wanted: ConnectionState, lent: T | None) -> None:
        current = self._state
        if wanted not in TRANSITIONS[current]:
            raise IllegalTransition(current, wanted)
        self._state, self._lent = wanted, lent
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()
        if wanted.label != current.label:
            self._on_label(wanted.label)

    async def borrow(self, wait: float) -> T | None:
        """The lent session, waiting at most ``wait`` seconds for one; None when there is none by then,
        or as soon as the connection is closing."""
        if self._lent is None:
            with anyio.move_on_after(wait):
                await self.wait_for(_S.CONNECTED, _S.CLOSING, _S.CLOSED)
        return self._lent

    async def wait_for(self, *states: ConnectionState) -> ConnectionState:
        """Wait until the state is one of ``states`` (at once if it is); returns it. Unbounded: callers
        bound it with a cancel scope."""
        while self._state not in states:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        return self._state
