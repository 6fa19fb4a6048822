"""The Responses API routes: create, retrieve, delete, input items (ADR 0013). Thin: parse, hand to the
`ResponsesService`, answer JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from smg.api.chat import upstream_headers
from smg.errors import InvalidRequest
from smg.protocol import parse_json_body
from smg.responses.events import response_events, sse
from smg.responses.request import parse_responses_request

if TYPE_CHECKING:
    from smg.responses.service import ResponsesService
    from smg.settings import RequestLimits

router = APIRouter()
_MAX_PAGE = 100
_NO_CACHE = {"Cache-Control": "no-cache"}
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


@router.post("/v1/responses", openapi_extra=_CREATE_SCHEMA)
async def create_response(request: Request) -> Response:
    """Create a model response; with ``stream`` its event stream, sent once the response is finished
    (`smg.responses.events`). Raises InvalidJson, InvalidRequest and what
    `ResponsesService.create` raises."""
    ctx = _context(request)
    parsed = parse_responses_request(parse_json_body(await request.body()), limits=ctx.request_limits)
    response = await ctx.responses.create(parsed, headers=upstream_headers(request.scope))
    if parsed.stream:
        return Response(sse(response_events(response)), media_type="text/event-stream", headers=_NO_CACHE)
    return _json(response)


@router.get("/v1/responses/{response_id}")
async def get_response(response_id: str, request: Request) -> Response:
    return _json(await _context(request).responses.retrieve(response_id))


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> Response:
    return _json(await _context(request).responses.delete(response_id))


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
