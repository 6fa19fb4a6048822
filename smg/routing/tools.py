"""Which MCP tools a chat request gets, and how they are offered to the model (DESIGN 4.1).

A request opts in per server with a Responses-style entry in ``tools``::

    {"type": "mcp", "server_label": "clock", "allowed_tools": ["now"], "require_approval": "never"}

``allowed_tools`` is optional (a list of tool names, or ``{"tool_names": [...]}``); names the server does
not list are ignored. ``require_approval`` may only be absent or ``"never"``. Servers exposed ``always``
add all their tools to every request. Several entries for one server are merged. Each MCP tool is offered
as an OpenAI ``function`` tool named by `ToolNameMap` (``<server>__<tool>``, provider-safe); client
``function`` tools pass through untouched and their calls go back to the client.

Errors (all `InvalidRequest`, HTTP 400, ``param`` pointing into the request): a malformed ``mcp`` entry,
an unregistered ``server_label`` (``tools[i].server_label``), ``require_approval`` other than ``never``,
a client function whose name equals an offered MCP tool's, and ``n`` > 1 (the loop drives one choice).
An unregistered server is a request problem (400 naming the parameter), not a missing resource (404).

The caller's key scope (`smg.keys.scope`) narrows all of it: an ``mcp`` entry naming a server outside
the scope is 403 `McpServerForbidden` (checked before registration, so a scoped key learns nothing of
servers it may not use); ``always`` servers outside it and tools outside it are not offered.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from smg.errors import InvalidRequest, McpServerForbidden
from smg.keys.scope import UNRESTRICTED, KeyScope
from smg.mcp.errors import McpServerNotFound
from smg.mcp.registry.naming import ToolNameMap
from smg.mcp.types import McpRuntime, ToolInfo

Owner = Literal["mcp", "client", "unknown"]


@dataclass(frozen=True)
class ToolPlan:
    """The MCP tools of one request.

    ``body``: the request body with every ``mcp`` entry replaced by ``function_tools`` (client tools kept,
    in place, before the MCP ones). ``tools``: exposed name -> the MCP tool it stands for.
    ``client_tools``: names of the function tools the client declared.
    """

    body: dict[str, Any]
    function_tools: list[dict[str, Any]]
    tools: Mapping[str, ToolInfo]
    client_tools: frozenset[str] = field(default_factory=frozenset)

    def owner(self, name: str) -> Owner:
        """Who executes a call of ``name``: the gateway (``mcp``), the client, or nobody (``unknown``)."""
        if name in self.tools:
            return "mcp"
        return "client" if name in self.client_tools else "unknown"


@dataclass
class _Wanted:
    index: int
    names: set[str] | None  # None: every tool of the server


def _allowed(entry: Mapping[str, Any], i: int) -> set[str] | None:
    allowed = entry.get("allowed_tools")
    if isinstance(allowed, Mapping):
        allowed = allowed.get("tool_names")
    if allowed is None:
        return None
    if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
        raise InvalidRequest(
            "'allowed_tools' must be an array of tool names", param=f"tools[{i}].allowed_tools"
        )
    return set(allowed)


def _mcp_entries(tools: list[Any]) -> dict[str, _Wanted]:
    wanted: dict[str, _Wanted] = {}
    for i, entry in enumerate(tools):
        if entry.get("type") != "mcp":
            continue
        label = entry.get("server_label")
        if not isinstance(label, str) or not label:
            raise InvalidRequest(
                "an mcp tool needs a non-empty string 'server_label'", param=f"tools[{i}].server_label"
            )
        approval = entry.get("require_approval")
        if approval not in (None, "never"):
            raise InvalidRequest(
                "only require_approval 'never' is supported: the gateway runs MCP tools itself",
                param=f"tools[{i}].require_approval",
            )
        names = _allowed(entry, i)
        known = wanted.get(label)
        if known is None:
            wanted[label] = _Wanted(i, names)
        elif known.names is not None:
            known.names = None if names is None else known.names | names
    return wanted


async def resolve_tools(
    body: dict[str, Any],
    runtime: McpRuntime,
    *,
    always: Collection[str] = (),
    aliases: Mapping[str, Mapping[str, str]] | None = None,
    scope: KeyScope = UNRESTRICTED,
) -> ToolPlan | None:
    """The MCP tools ``body`` gets (its ``mcp`` entries plus the ``always`` servers), or None when it gets
    none (the caller keeps the pass-through path). ``aliases``: per server ``{tool: alias}`` (the
    `ServerSpec.aliases`), used in the exposed names; ``scope``: the caller's key scope. Raises
    InvalidRequest (see the module docstring), McpServerForbidden (403) and McpServerUnavailable (a
    ``required`` server cannot list its tools)."""
    tools = body.get("tools") or []
    wanted = _mcp_entries(tools)
    if not wanted and not always:
        return None
    for label, want in wanted.items():
        if not scope.allows_server(label):
            raise McpServerForbidden(
                f"the API key {scope.name!r} may not use the MCP server {label!r}",
                server=label,
                param=f"tools[{want.index}].server_label",
            )
    if scope.restricted:
        always = [s for s in always if scope.allows_server(s)]
    registered = {status.name for status in runtime.statuses()}
    for label, want in wanted.items():
        if label not in registered:
            raise InvalidRequest(
                f"no MCP server named {label!r} is registered", param=f"tools[{want.index}].server_label"
            )
    servers = list(wanted) + [s for s in always if s not in wanted and s in registered]
    if not servers:
        return None
    try:
        listed = await runtime.list_tools(servers)
    except McpServerNotFound as exc:  # unregistered between statuses() and list_tools()
        index = wanted[exc.server].index if exc.server in wanted else 0
        raise InvalidRequest(exc.message, param=f"tools[{index}].server_label") from None
    selected: dict[str, list[ToolInfo]] = {}
    for server in servers:
        names = wanted[server].names if server in wanted else None
        selected[server] = [
            t
            for t in listed.get(server, [])
            if (names is None or t.name in names) and scope.allows_tool(server, t.name)
        ]
    name_map = ToolNameMap(
        {server: [t.name for t in infos] for server, infos in selected.items()}, aliases=aliases
    )
    by_exposed = {name_map.exposed(t.server, t.name): t for infos in selected.values() for t in infos}
    if not by_exposed:
        return None
    kept = [t for t in tools if t.get("type") != "mcp"]
    client_names: set[str] = set()
    for i, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type") == "function" and isinstance(function, Mapping):
            name = function.get("name")
            if name in by_exposed:
                raise InvalidRequest(
                    f"function {name!r} has the name of an MCP tool offered to this request",
                    param=f"tools[{i}].function.name",
                )
            if isinstance(name, str):
                client_names.add(name)
    n = body.get("n")
    if n not in (None, 1):
        raise InvalidRequest("n must be 1 when MCP tools are used", param="n")
    function_tools = [_function_tool(exposed, info) for exposed, info in by_exposed.items()]
    return ToolPlan(
        body={**body, "tools": kept + function_tools},
        function_tools=function_tools,
        tools=by_exposed,
        client_tools=frozenset(client_names),
    )


def _function_tool(exposed: str, info: ToolInfo) -> dict[str, Any]:
    function: dict[str, Any] = {"name": exposed, "parameters": info.input_schema or {"type": "object"}}
    if info.description:
        function["description"] = info.description
    return {"type": "function", "function": function}
