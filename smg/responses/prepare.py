"""What a ``POST /v1/responses`` needs before its first model round, the same for a streamed request
and a whole one (`Preparation`), and what it leaves behind once it has a response.

In order: the conversation is the stored chain of ``previous_response_id`` (each response's input
items and output) plus this request's input; the approval answers it gives are checked
(`smg.responses.approval.answers`); the request's tools are resolved on the registered servers and
the request's own (`plan_of`, within the caller's key scope); one ``mcp_list_tools`` item is made per
server the conversation has not listed yet; the approved calls run, each exactly as stored (their
results recorded as soon as they ran, so answering again reuses them); the conversation becomes chat
messages (with the request's ``text.format`` as ``response_format``); the tools that need approval are
handed to the loop as if the client owned them, so a reply asking for one ends the loop with nothing
of its round run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smg.errors import ResponseNotFound
from smg.keys.rules import require_tool
from smg.keys.scope import KeyScope
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.types import McpRuntime, ToolInfo
from smg.protocol import ChatRequest
from smg.responses.approval import Answer, ApprovalObserver, answers, gated_tools
from smg.responses.items import to_messages
from smg.responses.output import list_tools_item, mcp_call_item
from smg.responses.plan import ToolCatalog, plan_of
from smg.responses.remote_servers import check_served
from smg.responses.request import ResponsesRequest
from smg.responses.store import ResponseStore, StoredResponse
from smg.responses.text_format import response_format
from smg.routing.accumulator import AccumulatedCall
from smg.routing.budgets import CallRecord, LoopBudgets
from smg.routing.execution import NullLoopObserver, execute_round
from smg.routing.tools import ToolPlan
from smg.spans import Tracer

_MAX_CHAIN = 1000


@dataclass(frozen=True)
class Prepared:
    """A request ready for the loop. ``plan``: its tools as offered (with the conversation's messages
    in its body); ``held``: the same with the ``gated`` tools (those needing approval) as the client's,
    which is what the loop runs; ``output``: the items that come before the model's (``mcp_list_tools``,
    then the approved ``mcp_call``s); ``records``: the approved calls run (iteration 0)."""

    chat: ChatRequest
    plan: ToolPlan
    held: ToolPlan
    gated: frozenset[str]
    output: list[dict[str, Any]]
    records: list[CallRecord]
    budgets: LoopBudgets


class Preparation:
    """Prepares requests (call it) and keeps their responses. ``budgets``: the gateway's loop budgets
    (a request's ``max_tool_calls`` may only narrow them)."""

    def __init__(
        self,
        store: ResponseStore,
        *,
        catalog: ToolCatalog,
        budgets: LoopBudgets,
        tracer: Tracer,
        approvals: ApprovalObserver,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._budgets = budgets
        self._tracer = tracer
        self._approvals = approvals

    async def __call__(
        self, request: ResponsesRequest, *, headers: dict[str, str], scope: KeyScope, runtime: McpRuntime
    ) -> Prepared:
        """``request`` ready for the loop, its tools listed and its approved calls run on ``runtime``
        within the key ``scope``. Raises InvalidRequest, McpServerForbidden, ResponseNotFound
        (``previous_response_id``), McpServerUnavailable, ResponseStoreError."""
        chain = await self._history(request.previous_response_id)
        history = chain + request.input
        given = answers(chain, request.input)
        plan = await plan_of(request, runtime, self._catalog, scope=scope)
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

        for answer in given:  # an approval runs a call: the key must be allowed to make it
            if answer.approved:
                require_tool(scope, answer.request["server_label"], answer.request["name"], param="input")
        resumed, records = await self._run_approved(given, plan, exposed, runtime, keep=request.store)
        messages = to_messages(history + resumed, exposed=exposed)
        if request.instructions:
            messages.insert(0, {"role": "system", "content": request.instructions})
        body = plan.body | {"messages": messages} | response_format(request.text_format)
        plan = dataclasses.replace(plan, body=body)
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
        chat = ChatRequest(raw=b"", body=plan.body, model=request.model, stream=False, headers=headers)
        return Prepared(chat, plan, held, gated, output + resumed, records, budgets)

    async def keep(
        self, request: ResponsesRequest, response: dict[str, Any], *, count: bool = True, store: bool = True
    ) -> None:
        """Count the response's approval requests (unless not ``count``), and store it when
        ``request.store`` (unless not ``store``: a background run stores its own). Raises
        ResponseStoreError."""
        for item in response["output"] if count else ():
            if item["type"] == "mcp_approval_request":
                self._approvals.on_approval("requested")
        if request.store and store:
            stored = StoredResponse(response["id"], response, request.input, request.previous_response_id)
            await asyncio.to_thread(self._store.put, stored)

    async def _run_approved(
        self,
        given: list[Answer],
        plan: ToolPlan,
        exposed: Callable[[str, str], str],
        runtime: McpRuntime,
        *,
        keep: bool,
    ) -> tuple[list[dict[str, Any]], list[CallRecord]]:
        """Run the approved calls of ``given`` concurrently, each with its stored arguments; their
        ``mcp_call`` items (in answer order) and the records of the calls run (iteration 0: before this
        request's first model round). A call whose result is recorded (its answer was sent before and
        the model round after it failed) is not run again: the recorded item is reused. With ``keep``
        the new results are recorded before the model reads them. Raises InvalidRequest when an
        approved call's server is not on ``runtime`` (`check_served`), before anything is counted."""
        check_served([a.request for a in given if a.approved], {s.name for s in runtime.statuses()})
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
            runtime,
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
