"""ResponsesService: ``POST /v1/responses`` as chat rounds run by the chat `ToolLoop`, and stored responses.

A request reads top to bottom: the conversation is the stored chain of ``previous_response_id`` (each
response's input items and output) plus this request's input; the request's tools are resolved as a chat
request's are (`resolve_tools`: ``mcp`` entries on registered servers, servers exposed ``always``; a
``read_only`` filter keeps the tools whose MCP annotations say read-only); the conversation becomes chat
messages and the loop runs it through the `Dispatcher` (one ``/v1/chat/completions`` call per model
round). The result becomes output items (`smg.responses.output`) and, with ``store``, a stored row. The
route is recorded once by a `RouteRecorder`, as a chat request's is.

Approvals (`smg.responses.approval`): tools that need one are given to the loop as if the client owned
them, so a reply asking for one ends the loop with nothing of its round run, and each such call becomes
an ``mcp_approval_request`` item. A follow-up's answers are checked first; the approved calls then run
exactly as stored (one ``mcp_call`` each, with its ``approval_request_id``), and the model reads their
results, or the denials, before its next round.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import orjson

from smg.errors import InvalidRequest, ResponseNotFound
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.types import ToolInfo
from smg.protocol import ChatRequest
from smg.responses.approval import Answer, ApprovalObserver, NullApprovalObserver, answers, gated_tools
from smg.responses.items import new_id, to_messages
from smg.responses.output import final_items, list_tools_item, mcp_call_item, response_object, round_items
from smg.responses.plan import ToolCatalog, plan_of
from smg.responses.request import ResponsesRequest
from smg.responses.store import ResponseStore, StoredResponse
from smg.routing.accumulator import AccumulatedCall
from smg.routing.budgets import CallRecord, LoopBudgets
from smg.routing.execution import NullLoopObserver, execute_round
from smg.routing.loop import ToolLoop
from smg.routing.recorder import RouteRecorder, RouterObserver
from smg.routing.tools import ToolPlan
from smg.spans import Tracer
from smg.workers.dispatch import Completed

_MAX_CHAIN = 1000


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
        approvals: ApprovalObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._loop = loop
        self._store = store
        self._catalog = catalog
        self._budgets = budgets
        self._observer = observer
        self._tracer = tracer
        self._policy = policy
        self._approvals = approvals or NullApprovalObserver()
        self._clock = clock

    async def create(self, request: ResponsesRequest, *, headers: dict[str, str]) -> dict[str, Any]:
        """Run ``request`` to a response object (stored when ``request.store``). Raises InvalidRequest,
        ResponseNotFound (``previous_response_id``), McpServerUnavailable, NoAvailableWorkers,
        ModelNotFound, UpstreamError, ResponseStoreError. Approved calls run before the first model
        round: when that round fails, nothing but their results is kept (the approval stays
        unanswered, and answering it again reuses the results)."""
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
            chain = await self._history(request.previous_response_id)
            history = chain + request.input
            given = answers(chain, request.input)
            plan = await plan_of(request, self._loop.runtime, self._catalog)
            gated = gated_tools(request.tools, plan.tools)
            listed = {i["server_label"] for i in history if i["type"] == "mcp_list_tools"}
            output = [
                list_tools_item(server, [t for t in plan.tools.values() if t.server == server])
                for server in dict.fromkeys(t.server for t in plan.tools.values())
                if server not in listed
            ]
            names = {(t.server, t.name): exposed for exposed, t in plan.tools.items()}

            def exposed(server: str, tool: str) -> str:
                return names.get((server, tool)) or exposed_tool_name(server, tool)

            resumed, records = await self._run_approved(given, plan, exposed, keep=request.store)
            messages = to_messages(history + resumed, exposed=exposed)
            if request.instructions:
                messages.insert(0, {"role": "system", "content": request.instructions})
            plan = dataclasses.replace(plan, body=plan.body | {"messages": messages})
            held = dataclasses.replace(  # gated tools end the loop unrun, as the client's own do
                plan,
                tools={n: t for n, t in plan.tools.items() if n not in gated},
                client_tools=plan.client_tools | gated,
            )
            budgets = self._budgets
            if request.max_tool_calls is not None:
                budgets = dataclasses.replace(
                    budgets, max_tool_calls=min(budgets.max_tool_calls, request.max_tool_calls)
                )
            route.stage("tool_loop")
            chat = ChatRequest(raw=b"", body=plan.body, model=request.model, stream=False, headers=headers)
            result = await self._loop.run(chat, held, report=route.generation, budgets=budgets)
            route.end_stage()
            route.answered(Completed(200, "application/json", orjson.dumps(result.reply), result.worker))
        route.finish()
        result.ledger.records[:0] = records
        output += resumed
        for done in result.rounds:
            output += round_items(done, plan)
        final = final_items(result, plan, gated)
        for item in final:
            if item["type"] == "mcp_approval_request":
                self._approvals.on_approval("requested")
        output += final
        response = response_object(request, result, output, response_id=new_id("resp"), created_at=created_at)
        if request.store:
            stored = StoredResponse(response["id"], response, request.input, request.previous_response_id)
            await asyncio.to_thread(self._store.put, stored)
        return response

    async def _run_approved(
        self, given: list[Answer], plan: ToolPlan, exposed: Callable[[str, str], str], *, keep: bool
    ) -> tuple[list[dict[str, Any]], list[CallRecord]]:
        """Run the approved calls of ``given`` concurrently, each with its stored arguments; their
        ``mcp_call`` items (in answer order) and the records of the calls run (iteration 0: before this
        request's first model round). A call whose result is recorded (its answer was sent before and
        the model round after it failed) is not run again: the recorded item is reused. With ``keep``
        the new results are recorded before the model reads them."""
        for answer in given:
            self._approvals.on_approval("approved" if answer.approved else "denied")
        approved = [a.request for a in given if a.approved]
        if not approved:
            return [], []
        done = await asyncio.to_thread(self._store.runs, [r["id"] for r in approved])
        offered = {(t.server, t.name): t for t in plan.tools.values()}
        calls: list[AccumulatedCall] = []
        tools: dict[str, ToolInfo] = {}
        for n, request in enumerate(r for r in approved if r["id"] not in done):
            server, tool = request["server_label"], request["name"]
            name = exposed(server, tool)
            tools[name] = offered.get((server, tool)) or ToolInfo(server, tool, None, {})
            calls.append(AccumulatedCall(n, request["id"], name, request["arguments"]))
        messages, records = await execute_round(
            self._loop.runtime,
            ToolPlan(body={}, function_tools=[], tools=tools),
            calls,
            iteration=0,
            observer=NullLoopObserver(),
            tracer=self._tracer,
        )
        for call, message, record in zip(calls, messages, records, strict=True):
            done[call.id] = mcp_call_item(
                call, message, record.status, tools[call.name], approval_request_id=call.id
            )
            if keep:
                await asyncio.to_thread(self._store.put_run, call.id, done[call.id])
        return [done[r["id"]] for r in approved], records

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
