"""ResponsesService: ``POST /v1/responses`` as chat rounds run by the chat `ToolLoop`, and stored responses.

A request reads top to bottom: the conversation is the stored chain of ``previous_response_id`` (each
response's input items and output) plus this request's input; the request's tools are resolved as a chat
request's are (`resolve_tools`: ``mcp`` entries on registered servers, servers exposed ``always``; a
``read_only`` filter keeps the tools whose MCP annotations say read-only); the conversation becomes chat
messages and the loop runs it through the `Dispatcher` (one ``/v1/chat/completions`` call per model
round). The result becomes output items (`smg.responses.output`) and, with ``store``, a stored row. The
route is recorded once by a `RouteRecorder`, as a chat request's is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

import orjson

from smg.errors import InvalidRequest, ResponseNotFound
from smg.mcp.registry.naming import exposed_tool_name
from smg.protocol import ChatRequest
from smg.responses.items import new_id, to_messages
from smg.responses.output import final_items, list_tools_item, response_object, round_items
from smg.responses.request import ResponsesRequest
from smg.responses.store import ResponseStore, StoredResponse
from smg.routing.budgets import LoopBudgets
from smg.routing.loop import ToolLoop
from smg.routing.recorder import RouteRecorder, RouterObserver
from smg.routing.tools import ToolPlan, resolve_tools
from smg.spans import Tracer
from smg.workers.dispatch import Completed

_MAX_CHAIN = 1000


class ToolCatalog(Protocol):
    """Servers every request gets, and tool aliases (`smg.mcp.control.McpControl` provides it)."""

    def always(self) -> Collection[str]: ...
    def aliases(self) -> Mapping[str, Mapping[str, str]]: ...


class ResponsesService:
    """Serves the Responses API. ``budgets`` are the gateway's loop budgets (a request's
    ``max_tool_calls`` may only narrow them)."""

    def __init__(
        self,
        loop: ToolLoop,
        store: ResponseStore,
        *,
        catalog: ToolCatalog,
        budgets: LoopBudgets,
        observer: RouterObserver,
        tracer: Tracer,
        policy: str,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._loop = loop
        self._store = store
        self._catalog = catalog
        self._budgets = budgets
        self._observer = observer
        self._tracer = tracer
        self._policy = policy
        self._clock = clock

    async def create(self, request: ResponsesRequest, *, headers: dict[str, str]) -> dict[str, Any]:
        """Run ``request`` to a response object (stored when ``request.store``). Raises InvalidRequest,
        ResponseNotFound (``previous_response_id``), McpServerUnavailable, NoAvailableWorkers,
        ModelNotFound, UpstreamError, ResponseStoreError."""
        created_at = int(time.time())
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=request.stream,
            policy=self._policy,
            clock=self._clock,
        )
        with route:
            history = await self._history(request.previous_response_id) + request.input
            plan = await self._plan(request)
            listed = {i["server_label"] for i in history if i["type"] == "mcp_list_tools"}
            output = [
                list_tools_item(server, [t for t in plan.tools.values() if t.server == server])
                for server in dict.fromkeys(t.server for t in plan.tools.values())
                if server not in listed
            ]
            names = {(t.server, t.name): exposed for exposed, t in plan.tools.items()}
            messages = to_messages(history, exposed=lambda s, t: names.get((s, t)) or exposed_tool_name(s, t))
            if request.instructions:
                messages.insert(0, {"role": "system", "content": request.instructions})
            plan = dataclasses.replace(plan, body=plan.body | {"messages": messages})
            budgets = self._budgets
            if request.max_tool_calls is not None:
                budgets = dataclasses.replace(
                    budgets, max_tool_calls=min(budgets.max_tool_calls, request.max_tool_calls)
                )
            route.stage("tool_loop")
            chat = ChatRequest(raw=b"", body=plan.body, model=request.model, stream=False, headers=headers)
            result = await self._loop.run(chat, plan, report=route.generation, budgets=budgets)
            route.end_stage()
            route.answered(Completed(200, "application/json", orjson.dumps(result.reply), result.worker))
        route.finish()
        for done in result.rounds:
            output += round_items(done, plan)
        output += final_items(result, plan)
        response = response_object(request, result, output, response_id=new_id("resp"), created_at=created_at)
        if request.store:
            stored = StoredResponse(response["id"], response, request.input, request.previous_response_id)
            await asyncio.to_thread(self._store.put, stored)
        return response

    async def retrieve(self, response_id: str) -> dict[str, Any]:
        """The stored response. Raises ResponseNotFound, ResponseStoreError."""
        return (await asyncio.to_thread(self._store.get, response_id)).response

    async def delete(self, response_id: str) -> dict[str, Any]:
        """Forget a stored response; OpenAI's deletion object. Raises ResponseNotFound, ResponseStoreError."""
        await asyncio.to_thread(self._store.delete, response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        """A page of the response's input items, OpenAI's list shape (``order`` ``asc`` or ``desc``;
        ``after``: the id of the item before the page). Raises ResponseNotFound, InvalidRequest
        (``after`` names no item of this response), ResponseStoreError."""
        items = (await asyncio.to_thread(self._store.get, response_id)).input_items
        if order == "desc":
            items = items[::-1]
        if after is not None:
            ids = [i["id"] for i in items]
            if after not in ids:
                raise InvalidRequest(f"no input item {after!r} in response {response_id!r}", param="after")
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }

    async def _history(self, previous_id: str | None) -> list[dict[str, Any]]:
        """The items of the chain ending at ``previous_id``, oldest first. Raises ResponseNotFound
        (``param``: ``previous_response_id``) when a response of the chain is gone."""
        chain: list[StoredResponse] = []
        next_id = previous_id
        while next_id is not None and len(chain) < _MAX_CHAIN:
            try:
                stored = await asyncio.to_thread(self._store.get, next_id)
            except ResponseNotFound:
                raise ResponseNotFound(next_id, param="previous_response_id") from None
            chain.append(stored)
            next_id = stored.previous_id
        items: list[dict[str, Any]] = []
        for stored in reversed(chain):
            items += stored.input_items + stored.response.get("output", [])
        return items

    async def _plan(self, request: ResponsesRequest) -> ToolPlan:
        """The request's tools as a chat tool plan: ``mcp`` entries resolved on the registered servers,
        function tools in chat's shape. Raises InvalidRequest, McpServerUnavailable."""
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
        plan = await resolve_tools(
            body, self._loop.runtime, always=self._catalog.always(), aliases=self._catalog.aliases()
        )
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
    entry stays (`resolve_tools` reads it)."""
    if tool.get("type") != "function":
        return tool
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
