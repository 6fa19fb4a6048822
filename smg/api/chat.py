"""POST /v1/chat/completions: parse, validate, hand to the ChatService; stream or not."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from smg.api.deps import context_of
from smg.protocol import parse_chat_request

router = APIRouter()

_FORWARDED = (b"traceparent", b"tracestate")
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_CHAT_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "messages"],
                    "properties": {
                        "model": {"type": "string"},
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": "boolean"},
                        "tools": {"type": "array", "items": {"type": "object"}},
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}


def _upstream_headers(request: Request) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Request-Id": request.state.request_id}
    for name, value in request.scope["headers"]:
        if name in _FORWARDED:
            headers[name.decode()] = value.decode("latin-1")
    return headers


@router.post("/v1/chat/completions", openapi_extra=_CHAT_SCHEMA)
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions; unknown fields reach the worker untouched."""
    ctx = context_of(request)
    chat = parse_chat_request(
        await request.body(), headers=_upstream_headers(request), limits=ctx.request_limits
    )
    if chat.stream:
        return StreamingResponse(
            await ctx.chat.stream(chat), media_type="text/event-stream", headers=_STREAM_HEADERS
        )
    done = await ctx.chat.complete(chat)
    return Response(done.body, status_code=done.status, media_type=done.content_type)
