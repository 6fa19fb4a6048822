"""`ConnectionOptions`: how a `ServerConnection` behaves, one frozen value shared by every connection of
a pool (built once by `McpPool`, or by a one-shot probe)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from smg.mcp.runtime.framing import DEFAULT_MESSAGE_LIMIT
from smg.mcp.runtime.hooks import Backoff, HeadersHook, Sleep


@dataclass(frozen=True, kw_only=True)
class ConnectionOptions:
    """Timeouts, retry timing and transport limits of a connection, with the seams tests replace."""

    tools_ttl: float = 300.0
    """Seconds a cached tool list is trusted without a change notification."""
    backoff: Backoff = field(default_factory=Backoff)
    """Delays between the owner's attempts to open a session."""
    wake_interval: float = 1.0
    """Least time between the end of one attempt and the start of one that a caller woke early: a server
    that stays down sees at most one attempt per this many seconds from callers."""
    connect_timeout: float = 30.0
    """Bound of one attempt's handshake (transport and ``initialize``)."""
    ready_timeout: float = 10.0
    """How long a call waits for a session (at most the call's own timeout)."""
    reconnect: bool = True
    """False for one-shot probes: the owner ends when its one session does."""
    max_message_bytes: int = DEFAULT_MESSAGE_LIMIT
    """Largest JSON-RPC message accepted from a server."""
    environ: Mapping[str, str] | None = None
    """Where ``${VAR}`` references are resolved; None is the process environment."""
    headers_hook: HeadersHook | None = None
    """Extra headers of every HTTP request to a server (the trace context)."""
    sleep: Sleep = anyio.sleep
    """How the connection waits (between attempts, while re-listening)."""
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds, for tool-list ages and call durations."""
