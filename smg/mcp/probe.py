"""One-shot MCP helpers for registration checks and the offline CLI: connect, do one thing, close."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from smg.errors import SmgError
from smg.mcp.config import ServerSpec, resolve_secrets
from smg.mcp.connection import ServerConnection
from smg.mcp.errors import McpServerUnavailable, McpServerUnreachable
from smg.mcp.types import ToolInfo, ToolOutcome

_T = TypeVar("_T")
_CLOSE_GRACE_SECS = 10.0


async def probe_tools(
    spec: ServerSpec,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109  # bounds connecting and listing, not one await
    environ: Mapping[str, str] | None = None,
) -> list[ToolInfo]:
    """Connect to ``spec``, list its tools, close. Raises UnresolvedSecret, McpServerUnreachable."""
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

    async def call(connection: ServerConnection) -> ToolOutcome:
        await _listed(connection)  # waits for the session and learns whether the tool is retry-safe
        return await connection.call_tool(tool, arguments)

    return await _with_session(spec, timeout, environ, call)


async def _with_session(
    spec: ServerSpec,
    connect_timeout: float,
    environ: Mapping[str, str] | None,
    body: Callable[[ServerConnection], Awaitable[_T]],
) -> _T:
    env = os.environ if environ is None else environ
    resolve_secrets(spec.env, env, server=spec.name)  # a missing variable is the caller's error, say so
    resolve_secrets(spec.headers, env, server=spec.name)
    connection = ServerConnection(
        spec, connect_timeout=connect_timeout, ready_timeout=connect_timeout, environ=env, reconnect=False
    )
    results: list[_T] = []
    failures: list[SmgError] = []
    async with anyio.create_task_group() as tg:
        await tg.start(connection.run)
        try:
            results.append(await body(connection))
        except SmgError as exc:  # re-raised below, outside the task group (no exception group)
            failures.append(exc)
        finally:
            with anyio.CancelScope(shield=True):
                await connection.close(grace=_CLOSE_GRACE_SECS)
    if failures:
        raise failures[0]
    return results[0]


async def _listed(connection: ServerConnection) -> list[ToolInfo]:
    try:
        return await connection.list_tools()
    except McpServerUnavailable as exc:
        reason = connection.status().last_error or exc.message
        raise McpServerUnreachable(connection.name, reason) from None
