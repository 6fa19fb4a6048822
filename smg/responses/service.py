"""ResponsesService: ``POST /v1/responses`` as chat rounds run by the chat `ToolLoop`, and stored responses.

A request reads top to bottom: the conversation is the stored chain of ``previous_response_id`` (each
response's input items and output) plus this request's input; the request's tools are resolved as a chat
request's are (`resolve_tools`: ``mcp`` entries on registered servers, servers exposed ``always``; a
``read_only`` filter keeps the tools whose MCP annotations say read-only); the conversation becomes chat
messages and the loop runs it through the `Dispatcher` (one ``/v1/chat/completions`` call per model
round). The result becomes output items (`smg.responses.output`) and, with ``store``, a stored row. The
route is recorded once by a `RouteRecorder`, as a chat request's is. Everything before the first model
round is `smg.responses.prepare.Preparation`, shared by whole, background and streamed requests;
``stream: true`` runs the loop's streaming variant (`smg.responses.stream`).

Approvals (`smg.responses.approval`): tools that need one are given to the loop as if the client owned
them, so a reply asking for one ends the loop with nothing of its round run, and each such call becomes
an ``mcp_approval_request`` item. A follow-up's answers are checked first; the approved calls then run
exactly as stored (one ``mcp_call`` each, with its ``approval_request_id``), and the model reads their
results, or the denials, before its next round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from smg.errors import InvalidRequest
from smg.keys.scope import UNRESTRICTED, KeyScope
from smg.mcp.runtime.request_servers import RequestServers
from smg.mcp.types import McpRuntime
from smg.responses.approval import ApprovalObserver, NullApprovalObserver
from smg.responses.background import BackgroundRuns
from smg.responses.items import new_id
from smg.responses.output import final_items, response_object, round_items
from smg.responses.plan import ToolCatalog
from smg.responses.prepare import Preparation
from smg.responses.remote_servers import loop_on, require_unscoped
from smg.responses.request import ResponsesRequest
from smg.responses.store import ResponseStore
from smg.responses.stream import LiveStreams
from smg.routing.budgets import LoopBudgets
from smg.routing.loop import ToolLoop
from smg.routing.recent_loops import RESPONSES
from smg.routing.recorder import RouteRecorder, RouterObserver, RouteStream
from smg.spans import Tracer
from smg.workers.dispatch import Completed


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
        request_servers: RequestServers | None = None,
        clock: Callable[[], float] = time.perf_counter,
        max_background: int = 64,
    ) -> None:
        self._loop = loop
        self._store = store
        self._catalog = catalog
        self._budgets = budgets
        self._observer = observer
        self._tracer = tracer
        self._policy = policy
        self._approvals = approvals or NullApprovalObserver()
        self._request_servers = request_servers or RequestServers()  # default: refused
        self._clock = clock
        self._background = BackgroundRuns(store, limit=max_background)
        self._prepare = Preparation(
            store, catalog=catalog, budgets=budgets, tracer=tracer, approvals=self._approvals
        )
        self._live = LiveStreams(
            loop, self._prepare, observer=observer, tracer=tracer, policy=policy, clock=clock
        )

    async def __aenter__(self) -> ResponsesService:  # background runs a stopped gateway left: failed
        await self._background.recover()
        return self

    async def __aexit__(self, *exc: object) -> None:  # background runs still going: cancelled, failed
        await self._background.aclose()

    async def create(
        self, request: ResponsesRequest, *, headers: dict[str, str], scope: KeyScope = UNRESTRICTED
    ) -> dict[str, Any]:
        """Run ``request`` to a response object (stored when ``request.store``), its MCP tools and
        approved calls within the caller's key ``scope``. Raises InvalidRequest, McpServerForbidden,
        ResponseNotFound (``previous_response_id``), McpServerUnavailable, NoAvailableWorkers,
        ModelNotFound, UpstreamError, ResponseStoreError. Approved calls run before the first model
        round: when that round fails, nothing but their results is kept (the approval stays
        unanswered, and answering it again reuses the results). The servers the request defines
        (``server_url``) are connected for it alone, and closed when it ends, however it ends
        (RequestServersDisabled, McpHostNotAllowed, McpServerUnreachable when they cannot be)."""
        require_unscoped(scope, request.servers)
        self._background.require_ended(request.previous_response_id)

        async def respond(pending: dict[str, Any] | None = None) -> dict[str, Any]:
            async with self._request_servers.open(self._loop.runtime, request.servers) as runtime:
                return await self._create(request, headers, scope, runtime, pending=pending)

        if request.background:  # answered now, run by `BackgroundRuns` (smg.responses.background)
            return await self._background.start(request, respond)
        return await respond()

    async def stream(
        self,
        request: ResponsesRequest,
        *,
        headers: dict[str, str],
        deliver: Callable[[RouteStream], Awaitable[None]],
        scope: KeyScope = UNRESTRICTED,
    ) -> None:
        """Run ``request`` as OpenAI's event stream (`smg.responses.stream`): prepared and its first model
        round opened, then handed to ``deliver``, which sends it to the client; the servers the request
        defines stay connected until ``deliver`` returns. Raises, before ``deliver`` is called, what
        `create` raises for a request that is not background."""
        require_unscoped(scope, request.servers)
        self._background.require_ended(request.previous_response_id)
        async with self._request_servers.open(self._loop.runtime, request.servers) as runtime:
            await deliver(await self._live.open(request, headers=headers, scope=scope, runtime=runtime))

    async def _create(
        self,
        request: ResponsesRequest,
        headers: dict[str, str],
        scope: KeyScope,
        runtime: McpRuntime,
        *,
        pending: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`create`, with the MCP tools listed and called on ``runtime``; for a background run, the
        response of ``pending`` (its id and time), not stored here."""
        created_at = pending["created_at"] if pending else int(time.time())
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=request.stream,
            policy=self._policy,
            clock=self._clock,
        )
        with route:
            ready = await self._prepare(request, headers=headers, scope=scope, runtime=runtime)
            route.stage("tool_loop")
            loop = loop_on(self._loop, runtime)
            loop.keep_recent(
                route.generation, route.span, endpoint=RESPONSES, headers=headers, caller=scope.name
            )
            result = await loop.run(ready.chat, ready.held, report=route.generation, budgets=ready.budgets)
            route.end_stage()
            route.answered(Completed(200, "application/json", orjson.dumps(result.reply), result.worker))
        route.finish()
        result.ledger.records[:0] = ready.records
        output = list(ready.output)
        for done in result.rounds:
            output += round_items(done, ready.plan)
        output += final_items(result, ready.plan, ready.gated)
        response_id = pending["id"] if pending else new_id("resp")
        response = response_object(request, result, output, response_id=response_id, created_at=created_at)
        await self._prepare.keep(request, response, store=pending is None)
        return response

    async def retrieve(self, response_id: str) -> dict[str, Any]:
        """The stored response (a background one running here: as it is now). Raises ResponseNotFound,
        ResponseStoreError."""
        live = self._background.get(response_id)
        if live is not None:
            return live
        return (await asyncio.to_thread(self._store.get, response_id)).response

    async def cancel(self, response_id: str) -> dict[str, Any]:
        """Cancel a running background response; it, ``cancelled``. Raises ResponseNotFound,
        InvalidRequest (not a background response, or it finished), ResponseStoreError."""
        return await self._background.cancel(response_id, lambda: self.retrieve(response_id))

    async def delete(self, response_id: str) -> dict[str, Any]:
        """Forget a stored response (a background one running here is cancelled first); OpenAI's
        deletion object. Raises ResponseNotFound, ResponseStoreError."""
        await self._background.forget(response_id)
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
