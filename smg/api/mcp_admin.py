"""Admin API for MCP servers (admin key required, see auth):

GET /mcp/servers, POST /mcp/servers (validated; ``dry_run``), GET/DELETE /mcp/servers/{name},
POST /mcp/servers/{name}/refresh, POST /mcp/servers/{name}/tools/{tool}/call, GET /mcp/tools, GET /mcp/check.
Secrets are shown only as written references (``${VAR}``) or ``***``.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from smg.api.strict_json import StrictJsonRoute
from smg.mcp.control import McpControl
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.views import server_view, tool_view

router = APIRouter(prefix="/mcp", tags=["admin", "mcp"], route_class=StrictJsonRoute)


class McpContext(Protocol):
    """What the MCP admin routes need from the application context."""

    @property
    def mcp(self) -> McpControl: ...


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] = Field(default_factory=dict)


def _control(request: Request) -> McpControl:
    ctx: McpContext = request.app.state.context
    return ctx.mcp


def _server_view(control: McpControl, spec: ServerSpec) -> dict[str, Any]:
    statuses = {s.name: s for s in control.pool.statuses()}
    return server_view(spec, statuses.get(spec.name))


@router.get("/servers")
async def list_servers(request: Request) -> dict[str, Any]:
    control = _control(request)
    return {"servers": [_server_view(control, spec) for _, spec in sorted(control.specs().items())]}


@router.post("/servers", status_code=201)
async def add_server(body: dict[str, Any], request: Request) -> JSONResponse:
    """Body: the server spec fields plus optional ``dry_run``. Refusals list every finding."""
    control = _control(request)
    dry_run = bool(body.pop("dry_run", False))
    spec = ServerSpec.from_dict(body)
    validation = await control.add(spec, dry_run=dry_run)
    return JSONResponse(
        {
            "server": server_view(spec) if dry_run else _server_view(control, spec),
            "findings": [f.to_dict() for f in validation.findings],
            "saved": not dry_run,
        },
        status_code=200 if dry_run else 201,
    )


@router.get("/servers/{name}")
async def get_server(name: str, request: Request) -> dict[str, Any]:
    control = _control(request)
    spec = control.get(name)
    listed, _ = await control.list_each([name])
    return {**_server_view(control, spec), "tools": [tool_view(spec, t) for t in listed.get(name, [])]}


@router.delete("/servers/{name}")
async def remove_server(name: str, request: Request) -> dict[str, Any]:
    await _control(request).remove(name)
    return {"removed": name}


@router.post("/servers/{name}/refresh")
async def refresh_tools(name: str, request: Request) -> dict[str, Any]:
    control = _control(request)
    spec = control.get(name)
    listed, _ = await control.list_each([name], refresh=True)
    return {"tools": [tool_view(spec, t) for t in listed.get(name, [])]}


@router.post("/servers/{name}/tools/{tool}/call")
async def call_tool(name: str, tool: str, body: CallBody, request: Request) -> dict[str, Any]:
    control = _control(request)
    control.get(name)
    outcome = await control.pool.call_tool(name, tool, body.arguments, caller="admin")
    return {
        "server": outcome.server,
        "tool": outcome.tool,
        "status": outcome.status,
        "text": outcome.text,
        "duration": outcome.duration,
        "attempts": outcome.attempts,
    }


@router.get("/tools")
async def list_tools(request: Request) -> dict[str, Any]:
    control = _control(request)
    listed, _ = await control.list_each()
    specs = control.specs()
    return {
        "tools": [
            tool_view(specs[server], tool) for server, tools in sorted(listed.items()) for tool in tools
        ]
    }


@router.get("/check")
async def check(request: Request) -> dict[str, Any]:
    control = _control(request)
    listed, errors = await control.list_each(refresh=True)
    statuses = {s.name: s for s in control.pool.statuses()}
    out = []
    for name in sorted(control.specs()):
        status = statuses.get(name)
        out.append(
            {
                "name": name,
                "ok": name in listed,
                "state": status.state if status else "closed",
                "tools": len(listed.get(name, [])),
                "error": None
                if name in listed
                else (errors.get(name) or (status.last_error if status else "not connected")),
            }
        )
    return {"servers": out}
