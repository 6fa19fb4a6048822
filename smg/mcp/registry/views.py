"""The wire views of registered servers and their tools, shared by the admin API and the offline CLI
(so both print the same shapes). Secrets appear only redacted."""

from __future__ import annotations

from typing import Any

from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.types import ServerStatus, ToolInfo


def status_view(status: ServerStatus | None) -> dict[str, Any] | None:
    """A server's live status, or None when nothing runs it (offline, or not connected yet)."""
    if status is None:
        return None
    return {
        "state": status.state,
        "tools": status.tools,
        "breaker": status.breaker,
        "last_error": status.last_error,
        "reconnects": status.reconnects,
        "pid": status.pid,
    }


def server_view(spec: ServerSpec, status: ServerStatus | None = None) -> dict[str, Any]:
    """ServerView: the redacted spec plus ``status``."""
    return {**spec.redacted(), "status": status_view(status)}


def tool_view(spec: ServerSpec, tool: ToolInfo) -> dict[str, Any]:
    """ToolView: the tool, the name the model sees it under, its MCP hints and its arguments' JSON
    schema as the server listed it (``{"type": "object"}`` when it gave none)."""
    return {
        "server": spec.name,
        "name": tool.name,
        "exposed_name": exposed_tool_name(spec.name, spec.aliases.get(tool.name, tool.name)),
        "description": tool.description,
        "read_only": tool.read_only,
        "idempotent": tool.idempotent,
        "destructive": tool.destructive,
        "input_schema": tool.input_schema or {"type": "object"},
    }
