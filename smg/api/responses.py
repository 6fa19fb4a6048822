"""The Responses API routes: create, retrieve, delete, cancel, input items (ADR 0013). Thin: parse,
hand to the `ResponsesService`, answer JSON."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smg.api.chat import send_stream, upstream_headers
from smg.errors import InvalidRequest
from smg.keys.rules import require_model
from smg.keys.scope import KeyScope, scope_of
from smg.protocol import parse_json_body
from smg.responses.request import ResponsesRequest, parse_responses_request

if TYPE_CHECKING:
    from smg.responses.service import ResponsesService
    from smg.routing.recorder import RouteStream
    from smg.settings import RequestLimits

router = APIRouter()
_MAX_PAGE = 100
_CREATE_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "input"],
                    "properties": {"model": {"type": "string"}, "input": {}},
                }
            }
        },
    }
}


class ResponsesContext(Protocol):
    """What the Responses routes need from the application context."""

    @property
    def responses(self) -> ResponsesService: ...
    @property
    def request_limits(self) -> RequestLimits: ...


def _context(request: Request) -> ResponsesContext:
    ctx: ResponsesContext = request.app.state.context
    return ctx


def _json(value: dict[str, Any]) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


class _EventStream(Response):
    """``stream: true``: the response's events as the loop runs (`ResponsesService.stream`). Prepared
    and sent when the framework sends this response, so the request's own MCP servers stay connected
    while it is sent, in the task that connected them. An error before the stream starts raises for
    the error handlers, as a route's would; a client that leaves ends it (the route records that)."""

    def __init__(
        self, service: ResponsesService, request: ResponsesRequest, headers: dict[str, str], key: KeyScope
    ) -> None:
        super().__init__()
        self._run = (service, request, headers, key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service, request, headers, key = self._run

        async def deliver(chunks: RouteStream) -> None:
            # A client that left is recorded as client_disconnected; nothing of the run goes on.
            with contextlib.suppress(ClientDisconnect):
                await send_stream(scope, receive, send, chunks)

        await service.stream(request, headers=headers, deliver=deliver, scope=key)


@router.post("/v1/responses", openapi_extra=_CREATE_SCHEMA)
async def create_response(request: Request) -> Response:
    """Create a model response; with ``stream`` its event stream as the loop runs
    (`smg.responses.stream`). Raises InvalidJson, InvalidRequest and what `ResponsesService.create`
    raises (a stream: before its first byte)."""
    ctx = _context(request)
    parsed = parse_responses_request(parse_json_body(await request.body()), limits=ctx.request_limits)
    key_scope = scope_of(request.scope)
    require_model(key_scope, parsed.model)
    headers = upstream_headers(request.scope)
    if parsed.stream:
        return _EventStream(ctx.responses, parsed, headers, key_scope)
    return _json(await ctx.responses.create(parsed, headers=headers, scope=key_scope))


@router.get("/v1/responses/{response_id}")
async def get_response(response_id: str, request: Request) -> Response:
    return _json(await _context(request).responses.retrieve(response_id))


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> Response:
    return _json(await _context(request).responses.delete(response_id))


@router.post("/v1/responses/{response_id}/cancel")
async def cancel_response(response_id: str, request: Request) -> Response:
    """Cancel a running background response; it, ``cancelled`` (again when cancelled before). A
    finished or non-background response is a 400, an unknown one a 404."""
    return _json(await _context(request).responses.cancel(response_id))


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(response_id: str, request: Request) -> Response:
    """OpenAI's list of a response's input items: ``after``, ``limit`` (1-100, default 20), ``order``
    (``asc`` or ``desc``, default ``desc``)."""
    query = request.query_params
    raw_limit = query.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _MAX_PAGE:
        raise InvalidRequest(f"'limit' must be an integer from 1 to {_MAX_PAGE}", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'", param="order")
    page = await _context(request).responses.input_items(
        response_id, after=query.get("after"), limit=int(raw_limit), order=order
    )
    return _json(page)
