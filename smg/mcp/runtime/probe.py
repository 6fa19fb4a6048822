"""One-shot MCP helpers for registration checks and the offline CLI: connect, do one thing, close.

A failure names its phase and, for a stdio server, ends with the last lines the server wrote on stderr
(``...; last stderr lines: ...``), so a command that cannot be run or a server that dies with a traceback
explains itself. These errors go to whoever registers or checks a server, never into a chat response.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio

from smg.errors import SmgError
from smg.mcp.errors import McpServerUnavailable, McpServerUnreachable
from smg.mcp.registry.config import ServerSpec, resolve_secrets
from smg.mcp.runtime.connection import ServerConnection
from smg.mcp.runtime.hooks import NullMcpObserver
from smg.mcp.types import ToolInfo, ToolOutcome

_T = TypeVar("_T")
_CLOSE_GRACE_SECS = 10.0


class _Settled(NullMcpObserver):
    """Tells when the one connection attempt of a probe has settled: connected, failed or closed."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    def on_server_state(self, server: str, state: str) -> None:
        if state not in ("connecting", "reconnecting"):
            self.event.set()


async def probe_tools(
    spec: ServerSpec,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109  # bounds connecting and listing, not one await
    environ: Mapping[str, str] | None = None,
) -> list[ToolInfo]:
    """Connect to ``spec``, list its tools, close. ``timeout`` bounds the handshake and the listing each.
    Raises UnresolvedSecret, McpServerUnreachable (naming a timeout and its length when there was one)."""
    return await _with_session(spec, timeout, environ, _listed)


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
        await _listed(connection, settled, secs)  # learns whether the tool is retry-safe
        return await connection.call_tool(tool, arguments)

    return await _with_session(spec, timeout, environ, call)


async def _with_session(
    spec: ServerSpec,
    secs: float,
    environ: Mapping[str, str] | None,
    body: Callable[[ServerConnection, _Settled, float], Awaitable[_T]],
) -> _T:
    env = os.environ if environ is None else environ
    resolve_secrets(spec.env, env, server=spec.name)  # a missing variable is the caller's error, say so
    resolve_secrets(spec.headers, env, server=spec.name)
    settled = _Settled()
    connection = ServerConnection(
        spec,
        observer=settled,
        connect_timeout=secs,
        ready_timeout=secs,
        environ=env,
        reconnect=False,
    )
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
        failure = failures[0]
        # Read after closing: by then the child has exited and its stderr has been read to the end.
        tail = connection.status().extra.get("stderr") or ()
        if isinstance(failure, McpServerUnreachable) and tail:
            raise McpServerUnreachable(connection.name, _with_stderr(failure.reason, tail)) from None
        raise failure
    return results[0]


async def _listed(connection: ServerConnection, settled: _Settled, secs: float) -> list[ToolInfo]:
    """The tools, once the handshake is done. Raises McpServerUnreachable with the reason of the failed
    step: the connection's own (its handshake deadline is ``secs``) or a ``tools/list`` timeout."""
    # The connection enforces the handshake deadline itself; this bound only covers its teardown.
    with anyio.move_on_after(secs + _CLOSE_GRACE_SECS):
        await settled.event.wait()
    try:
        with anyio.fail_after(secs):
            return await connection.list_tools()
    except McpServerUnavailable as exc:
        reason = connection.status().last_error or exc.message
    except TimeoutError:
        reason = f"timed out: no answer to tools/list within {secs:g} s"
    raise McpServerUnreachable(connection.name, reason) from None


def _with_stderr(reason: str, tail: Sequence[str]) -> str:
    return f"{reason}; last stderr lines: {' | '.join(tail)}"
