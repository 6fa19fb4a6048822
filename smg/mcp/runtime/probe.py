"""One-shot MCP helpers for the offline CLI (connect, do one thing, close), and the first tool listing
of a connection, which registration validates (offline on a one-shot probe, in the gateway on the pool's
own connection: `first_tools`, `unreachable`).

A failure names its phase and, for a stdio server, ends with the last lines the server wrote on stderr
(``...; last stderr lines: ...``), so a command that cannot be run or a server that dies with a traceback
explains itself. These errors go to whoever registers or checks a server, never into a chat response.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from smg.errors import SmgError
from smg.mcp.errors import McpServerUnavailable, McpServerUnreachable
from smg.mcp.registry.config import ServerSpec, resolve_secrets
from smg.mcp.runtime.connection import ServerConnection
from smg.mcp.runtime.hooks import NullMcpObserver
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.types import ToolInfo, ToolOutcome

_T = TypeVar("_T")
_CLOSE_GRACE_SECS = 10.0


class _Settled(NullMcpObserver):
    """Tells when the one connection attempt of a probe has settled: connected, failed or closed."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    def on_server_state(self, server: str, state: str) -> None:
        if state != "connecting":  # without reconnects, a connection never reads "reconnecting"
            self.event.set()


async def probe_tools(
    spec: ServerSpec,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109  # bounds connecting and listing, not one await
    environ: Mapping[str, str] | None = None,
) -> list[ToolInfo]:
    """Connect to ``spec``, list its tools, close. ``timeout`` bounds the handshake and the listing each.
    Raises UnresolvedSecret, McpServerUnreachable (naming a timeout and its length when there was one)."""

    async def listed(connection: ServerConnection, settled: _Settled, secs: float) -> list[ToolInfo]:
        return await first_tools(connection, settled.event, secs)

    return await _with_session(spec, timeout, environ, listed)


async def call_once(
    spec: ServerSpec,
    tool: str,
    arguments: dict[str, Any],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109  # bounds connecting; the call has the tool's own timeout
    environ: Mapping[str, str] | None = None,
) -> ToolOutcome:
    """Connect to ``spec``, call ``tool`` once (retried only if retry-safe), close. Tool-side failures
    are outcomes; raises UnresolvedSecret, McpServerUnreachable when no session can be opened."""

    async def call(connection: ServerConnection, settled: _Settled, secs: float) -> ToolOutcome:
        await first_tools(connection, settled.event, secs)  # learns whether the tool is retry-safe
        return await connection.call_tool(tool, arguments)

    return await _with_session(spec, timeout, environ, call)


async def _with_session(
    spec: ServerSpec,
    secs: float,
    environ: Mapping[str, str] | None,
    body: Callable[[ServerConnection, _Settled, float], Awaitable[_T]],
) -> _T:
    env = os.environ if environ is None else environ
    check_secrets(spec, env)
    settled = _Settled()
    options = ConnectionOptions(connect_timeout=secs, ready_timeout=secs, environ=env, reconnect=False)
    connection = ServerConnection(spec, options=options, observer=settled)
    results: list[_T] = []
    failures: list[SmgError] = []
    async with anyio.create_task_group() as tg:
        await tg.start(connection.run)
        try:
            results.append(await body(connection, settled, secs))
        except SmgError as exc:  # re-raised below, outside the task group (no exception group)
            failures.append(exc)
        finally:
            with anyio.CancelScope(shield=True):
                await connection.close(grace=_CLOSE_GRACE_SECS)
    if failures:
        raise unreachable(connection, failures[0])  # after closing: the child's stderr is read to the end
    return results[0]


def check_secrets(spec: ServerSpec, environ: Mapping[str, str]) -> None:
    """Raise UnresolvedSecret when a ``${VAR}`` of ``spec`` is not set in ``environ``: a missing variable
    is the caller's error, so it is named before anything is started."""
    resolve_secrets(spec.env, environ, server=spec.name)
    resolve_secrets(spec.headers, environ, server=spec.name)


async def first_tools(connection: ServerConnection, settled: anyio.Event, secs: float) -> list[ToolInfo]:
    """The tools of ``connection``'s first session, once its first attempt is over (``settled``). Raises
    McpServerUnreachable with the reason of the failed step: the connection's own (its handshake
    deadline) or a ``tools/list`` timeout of ``secs`` seconds. A first attempt that failed is not
    retried (a stdio server is started once)."""
    # The connection enforces the handshake deadline itself; this bound only covers its teardown.
    with anyio.move_on_after(secs + _CLOSE_GRACE_SECS):
        await settled.wait()
    if connection.status().state not in ("connecting", "connected"):
        raise McpServerUnreachable(connection.name, connection.status().last_error or "no session")
    try:
        with anyio.fail_after(secs):
            return await connection.list_tools()
    except McpServerUnavailable as exc:
        reason = connection.status().last_error or exc.message
    except TimeoutError:
        reason = f"timed out: no answer to tools/list within {secs:g} s"
    raise McpServerUnreachable(connection.name, reason) from None


def unreachable(connection: ServerConnection, failure: SmgError) -> SmgError:
    """``failure`` of a closed connection, an McpServerUnreachable ending with the last lines a stdio
    server wrote on stderr (when it wrote any)."""
    tail = connection.status().extra.get("stderr") or ()
    if isinstance(failure, McpServerUnreachable) and tail:
        return McpServerUnreachable(
            connection.name, f"{failure.reason}; last stderr lines: {' | '.join(tail)}"
        )
    return failure
