"""One ``tools/call`` over an open session, with every way it can end mapped to a `ToolStatus`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client, MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from smg.mcp.runtime.convert import result_text
from smg.mcp.runtime.tools import FAILURES, describe
from smg.mcp.types import Progress, ToolStatus

_CALL_GRACE_SECS = 5.0  # beyond the tool timeout, for the SDK's own timeout and courtesy cancel


@dataclass(frozen=True)
class CallEnd:
    """How one call ended; ``session_lost`` names why the session is dead when the call showed it."""

    status: ToolStatus
    text: str
    session_lost: str | None = None


async def send_call(
    server: str,
    client: Client,
    tool: str,
    arguments: dict[str, Any],
    *,
    timeout_secs: float,
    progress: Progress | None = None,
) -> CallEnd:
    """Call ``tool`` on ``client`` with a ``timeout_secs`` read timeout, handing the server's progress
    notifications to ``progress``. Never raises but cancellation (which the SDK passes on to the server
    as ``notifications/cancelled``, or by closing the call's stream on the 2026-07-28 wire)."""
    try:
        with anyio.move_on_after(timeout_secs + _CALL_GRACE_SECS) as scope:
            result = await client.call_tool(
                tool, arguments, read_timeout_seconds=timeout_secs, progress_callback=progress
            )
    except MCPError as exc:
        if exc.code == REQUEST_TIMEOUT:
            return CallEnd("timeout", _timed_out(server, tool, timeout_secs))
        if exc.code == CONNECTION_CLOSED:
            text = f"MCP server {server!r} closed the connection during the call"
            return CallEnd("unavailable", text, session_lost="connection closed")
        return CallEnd("error", exc.message)  # includes arguments the server rejected
    except FAILURES as exc:
        if isinstance(exc, ValueError):  # pydantic's ValidationError: a bad result, not a dead session
            return CallEnd("error", f"MCP server {server!r} returned an invalid result: {describe(exc)}")
        text = f"MCP server {server!r} failed during the call: {describe(exc)}"
        return CallEnd("unavailable", text, session_lost=describe(exc))
    if scope.cancelled_caught:
        return CallEnd("timeout", _timed_out(server, tool, timeout_secs))
    if result.is_error:
        return CallEnd("error", result_text(result) or f"tool {tool!r} reported an error")
    return CallEnd("ok", result_text(result))


def _timed_out(server: str, tool: str, timeout_secs: float) -> str:
    return f"tool {tool!r} of MCP server {server!r} timed out after {timeout_secs:g} s"
