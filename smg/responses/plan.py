"""A Responses request's tools as a chat `ToolPlan`: ``mcp`` entries resolved on the registered servers
by `resolve_tools` (as a chat request's; ``require_approval`` is this package's, `smg.responses.approval`),
a ``read_only`` filter applied on the tools' MCP annotations, function tools in chat's shape."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from smg.errors import InvalidRequest
from smg.keys.scope import UNRESTRICTED, KeyScope
from smg.mcp.types import McpRuntime
from smg.responses.request import ResponsesRequest
from smg.routing.tools import ToolPlan, resolve_tools


class ToolCatalog(Protocol):
    """Servers every request gets, and tool aliases (`smg.mcp.control.McpControl` provides it)."""

    def always(self) -> Collection[str]: ...
    def aliases(self) -> Mapping[str, Mapping[str, str]]: ...


async def plan_of(
    request: ResponsesRequest, runtime: McpRuntime, catalog: ToolCatalog, *, scope: KeyScope = UNRESTRICTED
) -> ToolPlan:
    """The request's tools as a chat tool plan: ``mcp`` entries resolved on the registered servers
    within the caller's key ``scope``, function tools in chat's shape. Raises InvalidRequest,
    McpServerForbidden, McpServerUnavailable."""
    tools = [_chat_tool(t) for t in request.tools]
    body: dict[str, Any] = {"model": request.model, "messages": []}
    if tools:
        body["tools"] = tools
    for key, value in (
        ("tool_choice", _chat_tool_choice(request.tool_choice)),
        ("parallel_tool_calls", request.parallel_tool_calls),
        ("max_tokens", request.max_output_tokens),
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("user", request.user),
    ):
        if value is not None:
            body[key] = value
    plan = await resolve_tools(body, runtime, always=catalog.always(), aliases=catalog.aliases(), scope=scope)
    client = frozenset(t["name"] for t in request.tools if t.get("type") == "function")
    if plan is None:
        return ToolPlan(body=body, function_tools=[], tools={}, client_tools=client)
    read_only = {
        t["server_label"]
        for t in request.tools
        if t.get("type") == "mcp"
        and isinstance(t.get("allowed_tools"), dict)
        and t["allowed_tools"].get("read_only") is True
    }
    if not read_only:
        return plan
    kept = {n: t for n, t in plan.tools.items() if t.server not in read_only or t.read_only}
    functions = [f for f in plan.function_tools if f["function"]["name"] in kept]
    client_tools = [t for t in plan.body["tools"] if t not in plan.function_tools]
    return ToolPlan(plan.body | {"tools": client_tools + functions}, functions, kept, plan.client_tools)


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A Responses tool as chat's: a function tool nests its fields under ``function``; an ``mcp``
    entry stays (`resolve_tools` reads it) without ``require_approval``."""
    if tool.get("type") != "function":  # approvals are the Responses layer's, not chat's
        return {k: v for k, v in tool.items() if k != "require_approval"}
    function = {
        k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None
    }
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    """``tool_choice`` in chat's shape. Raises InvalidRequest for a choice chat cannot express."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'none', 'required' or a function", param="tool_choice"
    )
