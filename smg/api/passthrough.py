"""POST /v1/completions and POST /v1/embeddings: parse, validate, hand to the route's PassThroughService;
stream or not (embeddings never stream).

As for chat (`smg.api.chat`), `serve_completions` and `serve_embeddings` are plain ASGI endpoints the
edge calls itself for every POST on their path, and the FastAPI routes below only declare the operations,
for the OpenAPI document and the route table; they never serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smg.api.chat import body_headers, read_body, send_stream, upstream_headers
from smg.api.middleware import COMPLETIONS_ROUTE, EMBEDDINGS_ROUTE
from smg.keys.rules import require_model
from smg.keys.scope import scope_of
from smg.protocol import parse_passthrough_request

if TYPE_CHECKING:
    from smg.routing.passthrough import PassThroughService
    from smg.workers.dispatch import Completed

router = APIRouter()


def _schema(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    body = {"type": "object", "required": required, "properties": properties, "additionalProperties": True}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


_PROMPT = {"oneOf": [{"type": "string"}, {"type": "array"}]}
_COMPLETIONS_SCHEMA = _schema(
    ["model", "prompt"], {"model": {"type": "string"}, "prompt": _PROMPT, "stream": {"type": "boolean"}}
)
_EMBEDDINGS_SCHEMA = _schema(["model", "input"], {"model": {"type": "string"}, "input": _PROMPT})


class PassThroughContext(Protocol):
    """What the completions and embeddings endpoints need from the application context."""

    @property
    def completions(self) -> PassThroughService: ...
    @property
    def embeddings(self) -> PassThroughService: ...


async def serve_completions(scope: Scope, receive: Receive, send: Send) -> None:
    """OpenAI (legacy) completions, streamed or not; unknown fields reach the worker untouched.

    Raises the `smg.errors.SmgError` for the edge to render while nothing was sent yet, and
    ClientDisconnect when the client leaves.
    """
    ctx: PassThroughContext = scope["app"].state.context
    request = parse_passthrough_request(
        await read_body(receive), headers=upstream_headers(scope), prompt="prompt"
    )
    require_model(scope_of(scope), request.model)
    if request.stream:
        chunks = await ctx.completions.stream(request)
        del request  # a stream lasts as long as its reader is slow: the worker has the request
        await send_stream(scope, receive, send, chunks)
        return
    await _send_completed(send, await ctx.completions.complete(request))


async def serve_embeddings(scope: Scope, receive: Receive, send: Send) -> None:
    """OpenAI embeddings; unknown fields (``stream`` included) reach the worker untouched.

    Raises the `smg.errors.SmgError` for the edge to render, and ClientDisconnect.
    """
    ctx: PassThroughContext = scope["app"].state.context
    request = parse_passthrough_request(
        await read_body(receive), headers=upstream_headers(scope), prompt="input"
    )
    require_model(scope_of(scope), request.model)
    await _send_completed(send, await ctx.embeddings.complete(request))


async def _send_completed(send: Send, done: Completed) -> None:
    headers = body_headers(done.status, done.content_type, len(done.body))
    await send({"type": "http.response.start", "status": done.status, "headers": headers})
    await send({"type": "http.response.body", "body": done.body})


@router.post(COMPLETIONS_ROUTE, openapi_extra=_COMPLETIONS_SCHEMA)
async def completions() -> Response:
    """OpenAI completions; unknown fields reach the worker untouched."""
    raise RuntimeError(
        f"POST {COMPLETIONS_ROUTE} is served by the edge (EdgeMiddleware), never by this route"
    )


@router.post(EMBEDDINGS_ROUTE, openapi_extra=_EMBEDDINGS_SCHEMA)
async def embeddings() -> Response:
    """OpenAI embeddings; unknown fields reach the worker untouched."""
    raise RuntimeError(f"POST {EMBEDDINGS_ROUTE} is served by the edge, never by this route")
