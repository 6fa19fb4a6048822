"""POST /v1/chat/completions: parse, validate, hand to the ChatService; stream or not.

`serve_chat` is a plain ASGI endpoint and the only way a chat request is served: the edge calls it for
every ``POST /v1/chat/completions``, skipping routing, the request and response objects and the
exception layers (they cost more than the rest of the pass-through path). The FastAPI route below only
declares the operation, for the OpenAPI document and the route table; it never serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from fastapi import APIRouter
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smg.api.middleware import CHAT_ROUTE, printable
from smg.errors import InvalidRequest
from smg.keys.rules import require_model
from smg.keys.scope import scope_of
from smg.protocol import parse_chat_request

if TYPE_CHECKING:
    from smg.routing.chat import ChatService
    from smg.routing.recorder import RouteStream
    from smg.settings import RequestLimits

router = APIRouter()

_FORWARDED = (b"traceparent", b"tracestate")
# What a Starlette StreamingResponse(media_type="text/event-stream", headers=...) sends.
_STREAM_HEADERS = (
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
)
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


class ChatContext(Protocol):
    """What the chat endpoint needs from the application context."""

    @property
    def chat(self) -> ChatService: ...
    @property
    def request_limits(self) -> RequestLimits: ...


def upstream_headers(scope: Scope) -> dict[str, str]:
    """What the worker is sent besides the body: the request id (printable ASCII, the edge's rule) and
    the client's trace headers, byte for byte. Raises InvalidRequest (``param``: the header) for a
    trace header that is not printable ASCII: re-encoded it would not be the client's value."""
    headers = {"Content-Type": "application/json", "X-Request-Id": scope["state"]["request_id"]}
    for name, value in scope["headers"]:
        if name in _FORWARDED:
            key = name.decode()
            if not printable(value):
                raise InvalidRequest(f"the {key} header must be printable ASCII", param=key)
            headers[key] = value.decode("ascii")
    return headers


async def read_body(receive: Receive) -> bytes:
    """The whole request body. Raises ClientDisconnect when the client leaves first (as Starlette's
    ``Request.body`` does), and whatever ``receive`` raises (the edge's body limit)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def body_headers(status: int, content_type: str, length: int) -> list[tuple[bytes, bytes]]:
    """Content-Length and Content-Type as a Starlette ``Response`` would set them."""
    headers = []
    if not (status < 200 or status in (204, 304)):
        headers.append((b"content-length", str(length).encode("latin-1")))
    if content_type.startswith("text/") and "charset=" not in content_type.lower():
        content_type += "; charset=utf-8"
    headers.append((b"content-type", content_type.encode("latin-1")))
    return headers


async def serve_chat(scope: Scope, receive: Receive, send: Send) -> None:
    """OpenAI chat completions; unknown fields reach the worker untouched.

    Raises the `smg.errors.SmgError` for the edge to render while nothing was sent yet, and
    ClientDisconnect when the client leaves.
    """
    ctx: ChatContext = scope["app"].state.context
    chat = parse_chat_request(
        await read_body(receive), headers=upstream_headers(scope), limits=ctx.request_limits
    )
    key_scope = scope_of(scope)
    if key_scope.models is not None:  # the hot path: no call for an unrestricted caller
        require_model(key_scope, chat.model)
    if not chat.stream:
        done = await ctx.chat.complete(chat, scope=key_scope)
        headers = body_headers(done.status, done.content_type, len(done.body))
        await send({"type": "http.response.start", "status": done.status, "headers": headers})
        await send({"type": "http.response.body", "body": done.body})
        return
    chunks = await ctx.chat.stream(chat, scope=key_scope)
    # A stream lasts as long as its reader is slow: hold none of the request while relaying (the
    # worker has it; a tool loop keeps what it needs itself).
    del chat
    await send_stream(scope, receive, send, chunks)


async def send_stream(scope: Scope, receive: Receive, send: Send, chunks: RouteStream) -> None:
    """Relay a routed stream to the client, then close it (also when the client left before its end).
    Raises ClientDisconnect when the client leaves."""
    try:
        if _spec_version(scope) >= (2, 4):
            try:
                await _send_stream(send, chunks)
            except OSError:  # the server's word for a client that went away (ASGI spec 2.4)
                raise ClientDisconnect() from None
        else:
            await _send_stream_until_disconnect(receive, send, chunks)
    finally:
        # Ends the route now (upstream released, outcome recorded), also when nothing of it was read.
        await chunks.aclose()


def _spec_version(scope: Scope) -> tuple[int, ...]:
    return tuple(map(int, scope.get("asgi", {}).get("spec_version", "2.0").split(".")))


async def _send_stream(send: Send, chunks: AsyncIterator[bytes]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(_STREAM_HEADERS)})
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_stream_until_disconnect(receive: Receive, send: Send, chunks: AsyncIterator[bytes]) -> None:
    """Relay while listening for ``http.disconnect``: before ASGI spec 2.4 a server may drop what is
    sent to a client that left without saying so, and only ``receive`` tells. Whichever ends first
    cancels the other (as Starlette's StreamingResponse does)."""

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(_send_stream(send, chunks))
            listener = group.create_task(until_disconnect())
            sender.add_done_callback(lambda _: listener.cancel())
            listener.add_done_callback(lambda _: sender.cancel())
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0] from None
        raise


@router.post(CHAT_ROUTE, openapi_extra=_CHAT_SCHEMA)
async def chat_completions() -> Response:
    """OpenAI chat completions; unknown fields reach the worker untouched."""
    # Declared for the document and the route table: the edge serves every POST on this path itself.
    raise RuntimeError(f"POST {CHAT_ROUTE} is served by the edge (EdgeMiddleware), never by this route")
