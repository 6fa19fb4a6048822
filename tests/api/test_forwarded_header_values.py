"""Header values the gateway forwards to a worker (``x-request-id``, ``traceparent``, ``tracestate``) go
out byte for byte or not at all: a value outside printable ASCII is a 400 ``invalid_request`` to the
client, never a 500 and never re-encoded on the way. Raw sockets on both sides see the exact bytes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from smg.app import create_app
from smg.context import build_context
from smg.testing.gateway import RunningGateway
from tests._helpers import assert_error
from tests.conftest import make_settings

CHAT = b"/v1/chat/completions"
BODY = orjson.dumps({"model": "raw-model", "messages": [{"role": "user", "content": "hi"}]})
_MODELS = orjson.dumps({"object": "list", "data": [{"id": "raw-model", "object": "model", "owned_by": "t"}]})
_COMPLETION = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "raw-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)
_FRESH_ID = re.compile(rb"[0-9a-f]{32}")


@asynccontextmanager
async def recording_worker() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw worker: serves ``/v1/models`` and answers every chat POST; yields its URL and the raw heads
    of the chat requests it received."""
    heads: list[bytes] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if head.startswith(b"POST " + CHAT):
                    heads.append(head)
                body = _COMPLETION if head.startswith(b"POST") else _MODELS
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads
        server.close()


async def raw_post(url: str, header: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """POST the chat body with one extra header line, exactly as given, over a raw socket."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"%s\r\nConnection: close\r\n\r\n%s" % (CHAT, len(BODY), header, BODY)
        )
        async with asyncio.timeout(10):
            raw = await reader.read(-1)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = dict(line.split(b": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
async def raw_stack(
    start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> tuple[RunningGateway, list[bytes]]:
    url, heads = await stack.enter_async_context(recording_worker())
    gateway: RunningGateway = await start_gateway(make_settings((url,)))
    return gateway, heads


def _error(status: int, headers: dict[bytes, bytes], body: bytes) -> dict[str, Any]:
    response = httpx.Response(status, headers=list(headers.items()), content=body)
    return assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("value", [b"caf\xc3\xa9", b"\xff\xfe-id"], ids=["utf-8", "latin-1"])
async def test_a_request_id_outside_printable_ascii_is_refused_and_never_reaches_the_worker(
    raw_stack: tuple[RunningGateway, list[bytes]], value: bytes
) -> None:
    gateway, heads = raw_stack
    status, headers, body = await raw_post(gateway.url, b"X-Request-Id: " + value)
    error = _error(status, headers, body)
    assert error["param"] == "x-request-id" and error["type"] == "invalid_request_error"
    assert _FRESH_ID.fullmatch(headers[b"x-request-id"])  # the refused value is not echoed
    assert heads == []


async def test_a_printable_ascii_request_id_reaches_the_worker_and_comes_back_byte_for_byte(
    raw_stack: tuple[RunningGateway, list[bytes]],
) -> None:
    gateway, heads = raw_stack
    value = b"req/42 :!#$%&'*+-.^_`|~\t\"(x)[y]{z}<@>=?,;\\"
    status, headers, _ = await raw_post(gateway.url, b"X-Request-Id: " + value)
    assert status == 200
    assert headers[b"x-request-id"] == value
    [head] = heads
    assert b"\r\nX-Request-Id: " + value + b"\r\n" in head


@pytest.mark.parametrize("name", [b"traceparent", b"tracestate"])
async def test_a_trace_header_outside_printable_ascii_is_refused_and_never_reaches_the_worker(
    raw_stack: tuple[RunningGateway, list[bytes]], name: bytes
) -> None:
    gateway, heads = raw_stack
    status, headers, body = await raw_post(gateway.url, name + b": 00-caf\xc3\xa9")
    assert _error(status, headers, body)["param"] == name.decode()
    assert heads == []


@pytest.mark.parametrize("name", [b"X-Request-Id", b"traceparent", b"tracestate"])
@pytest.mark.parametrize("value", [b"a\rb", b"a\x01b", b"a\x7fb"], ids=["cr", "ctl", "del"])
async def test_control_characters_in_a_header_are_refused_by_the_server_before_the_gateway(
    raw_stack: tuple[RunningGateway, list[bytes]], name: bytes, value: bytes
) -> None:
    gateway, heads = raw_stack
    status, _, _ = await raw_post(gateway.url, name + b": " + value)
    assert status == 400  # uvicorn's httptools parser refuses the request line by line
    assert heads == []


@pytest.mark.parametrize("name", ["x-request-id", "traceparent", "tracestate"])
@pytest.mark.parametrize(
    "value",
    ["a\r\nInjected: 1", "a\nb", "a\x00b", "a\x1fb", "a\x7fb"],
    ids=["crlf", "lf", "nul", "us", "del"],
)
async def test_control_characters_reaching_the_app_are_a_400_and_never_reach_the_worker(
    stack: AsyncExitStack, name: str, value: str
) -> None:
    # Another ASGI server could hand them over; uvicorn never does (the test above).
    url, heads = await stack.enter_async_context(recording_worker())
    settings = make_settings((url,))
    context = await stack.enter_async_context(build_context(settings))
    app = await stack.enter_async_context(LifespanManager(create_app(settings, context=context)))
    transport = httpx.ASGITransport(app=app.app)
    client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://gw"))
    resp = await client.post(
        CHAT.decode(), content=BODY, headers={"content-type": "application/json", name: value}
    )
    assert assert_error(resp, 400, "invalid_request", param=name)["type"] == "invalid_request_error"
    assert _FRESH_ID.fullmatch(resp.headers["x-request-id"].encode())
    assert heads == []
