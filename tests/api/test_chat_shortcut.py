"""The edge serves POST /v1/chat/completions itself, past FastAPI's routing and exception layers. Every
answer it gives must be the one the framework route gives: same status, body, headers, metric labels.

Two gateways share one worker and one application context: one as built (the edge calls the endpoint),
one whose edge hands the request to a FastAPI application that routes it to the same endpoint (routing,
an endpoint returning a response, the gateway's error handlers: the framework route).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smg.api.chat import serve_chat
from smg.api.errors import install_error_handlers
from smg.api.middleware import EdgeMiddleware
from smg.app import create_app
from smg.context import AppContext, build_context
from smg.observability.metrics import Metrics
from smg.settings import AdmissionSettings, AuthSettings, ServerSettings
from smg.testing.gateway import serving
from smg.testing.worker import Faults, RunningWorker
from tests._helpers import assert_error, eventually, sample
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"
KEY = "sk-shortcut"
AUTH = {"Authorization": f"Bearer {KEY}"}
# Headers that differ between any two answers (the clock, a generated id, the server's own address).
_VARYING = {"date", "x-request-id", "location"}


class _Endpoint(Response):
    """A response that hands the exchange to `serve_chat` (the body has not been read)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_chat(scope, receive, send)


def _without_shortcut(app: FastAPI, context: AppContext) -> FastAPI:
    framework = FastAPI()
    framework.state.context = context
    install_error_handlers(framework)

    @framework.post(CHAT)
    async def chat_completions(request: Request) -> Response:
        return _Endpoint()

    for middleware in app.user_middleware:
        if middleware.cls is EdgeMiddleware:
            middleware.kwargs["direct"] = {**middleware.kwargs["direct"], CHAT: framework}
    return app


@dataclass
class Pair:
    shortcut: httpx.AsyncClient
    framework: httpx.AsyncClient
    context: AppContext
    metrics: Metrics

    async def both(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
        fast = await self.shortcut.request(method, path, **kwargs)
        slow = await self.framework.request(method, path, **kwargs)
        return fast, slow


@pytest.fixture
async def pair(worker: RunningWorker, stack: AsyncExitStack, metrics: Metrics) -> Pair:
    settings = make_settings(
        (worker.url,),
        server=ServerSettings(host="127.0.0.1", port=0, prometheus_port=0, max_payload_size=2048),
        auth=AuthSettings(api_keys=(KEY,)),
    )
    ctx = await stack.enter_async_context(build_context(settings, metrics=metrics))
    fast_url = await stack.enter_async_context(serving(create_app(settings, context=ctx)))
    slow_url = await stack.enter_async_context(
        serving(_without_shortcut(create_app(settings, context=ctx), ctx))
    )
    clients = [
        await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))
        for url in (fast_url, slow_url)
    ]
    return Pair(clients[0], clients[1], ctx, metrics)


def _comparable(resp: httpx.Response) -> Any:
    """The body, less what the worker numbers or stamps per answer."""
    if resp.headers.get("content-type") != "application/json":
        return resp.content
    body = orjson.loads(resp.content)
    if isinstance(body, dict):
        body.pop("id", None)
        body.pop("created", None)
    return body


def _same_answer(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code
    assert _comparable(fast) == _comparable(slow)
    assert [(k, v) for k, v in fast.headers.items() if k not in _VARYING] == [
        (k, v) for k, v in slow.headers.items() if k not in _VARYING
    ]
    assert fast.headers["x-request-id"] and slow.headers["x-request-id"]
    where = [r.headers.get("location", "").split("/", 3)[-1] for r in (fast, slow)]
    assert where[0] == where[1]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


CASES: dict[str, dict[str, Any]] = {
    "completion": {"json": chat_body("same answer"), "headers": AUTH},
    "completion_with_fields_the_gateway_does_not_read": {
        "json": chat_body("x", temperature=0.5, user="u1", metadata={"a": 1}),
        "headers": AUTH,
    },
    "unknown_model_404": {"json": {**chat_body(), "model": "nope"}, "headers": AUTH},
    "invalid_json_400": {"content": b"{nope", "headers": {**AUTH, "content-type": "application/json"}},
    "missing_messages_400": {"json": {"model": "mock-model"}, "headers": AUTH},
    "bad_stream_flag_400": {"json": chat_body(stream="yes"), "headers": AUTH},
    "empty_body_400": {"content": b"", "headers": AUTH},
    "declared_too_large_413": {"json": chat_body("x" * 4096), "headers": AUTH},
    "chunked_too_large_413": {
        "content": _chunks(b" " * 4096, 512),
        "headers": {**AUTH, "content-type": "application/json"},
    },
    "no_key_401": {"json": chat_body()},
    "wrong_key_401": {"json": chat_body(), "headers": {"Authorization": "Bearer sk-wrong"}},
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_the_shortcut_answers_exactly_as_the_framework_route(pair: Pair, case: dict[str, Any]) -> None:
    if "content" in case and not isinstance(case["content"], bytes):  # a stream is consumed once
        body = b"".join([c async for c in case["content"]])
        fast = await pair.shortcut.post(CHAT, content=_chunks(body, 512), headers=case["headers"])
        slow = await pair.framework.post(CHAT, content=_chunks(body, 512), headers=case["headers"])
    else:
        fast, slow = await pair.both("POST", CHAT, **case)

    _same_answer(fast, slow)


async def test_a_stream_through_the_shortcut_matches_the_framework_route(pair: Pair) -> None:
    body = chat_body("one two three", stream=True)
    fast, slow = await pair.both("POST", CHAT, json=body, headers=AUTH)

    assert fast.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert fast.headers["cache-control"] == "no-cache"
    assert fast.content.endswith(b"data: [DONE]\n\n")
    assert [(k, v) for k, v in fast.headers.items() if k not in _VARYING] == [
        (k, v) for k, v in slow.headers.items() if k not in _VARYING
    ]
    events = [line for line in fast.content.split(b"\n\n") if line]
    assert len(events) == len([line for line in slow.content.split(b"\n\n") if line])


async def test_other_methods_and_paths_still_take_the_framework_route(pair: Pair) -> None:
    for method, path in (("GET", CHAT), ("PUT", CHAT), ("POST", CHAT + "/"), ("POST", "/v1/chat")):
        fast, slow = await pair.both(method, path, json=chat_body(), headers=AUTH)
        assert fast.status_code in (404, 405, 307)
        _same_answer(fast, slow)


async def test_shortcut_requests_are_labelled_with_the_route_template(pair: Pair) -> None:
    await pair.shortcut.post(CHAT, json=chat_body(), headers=AUTH)
    await pair.shortcut.post(CHAT, json=chat_body())
    await pair.shortcut.post(CHAT, json={**chat_body(), "model": "nope"}, headers=AUTH)

    m = pair.metrics
    assert sample(m, "smg_http_requests_total", method="POST", path=CHAT) == 3
    assert sample(m, "smg_http_responses_total", path=CHAT, status_code="200", error_code="") == 1
    assert sample(m, "smg_http_responses_total", path=CHAT, status_code="401", error_code="invalid_api_key")
    assert sample(m, "smg_http_responses_total", path=CHAT, status_code="404", error_code="model_not_found")
    assert sample(m, "smg_http_connections_active") == 0


async def test_a_client_leaving_a_stream_releases_the_permit_and_the_worker(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(chunk_delay_ms=200))
    settings = make_settings(
        (worker.url,), admission=AdmissionSettings(max_concurrent_requests=1, queue_size=0)
    )
    gw = await start_gateway(settings)
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    body = chat_body("one two three four five six seven eight", stream=True)

    async with client.stream("POST", CHAT, json=body) as resp:
        assert resp.status_code == 200
        await anext(resp.aiter_raw())
        assert gw.context.admission.inflight == 1
    # The client closed the connection mid-stream: the gateway lets go of everything it held.

    await eventually(lambda: gw.context.admission.inflight == 0)
    await eventually(lambda: all(w.in_flight == 0 for w in gw.context.registry))
    labels = {"router_type": "http", "model": "mock-model", "endpoint": "chat", "streaming": "true"}
    await eventually(
        lambda: (
            sample(metrics, "smg_router_request_errors_total", **labels, error_type="client_disconnected")
            == 1
        )
    )
    async with asyncio.timeout(10):
        assert (await client.post(CHAT, json=chat_body())).status_code == 200


async def test_a_body_sent_in_many_pieces_reaches_the_worker_whole(pair: Pair, worker: RunningWorker) -> None:
    raw = orjson.dumps(chat_body("pieces", temperature=0.25))

    resp = await pair.shortcut.post(
        CHAT, content=_chunks(raw, 7), headers={**AUTH, "content-type": "application/json"}
    )

    assert resp.status_code == 200
    assert worker.stats.chat_requests == 1


async def test_a_401_through_the_shortcut_is_openai_shaped(pair: Pair) -> None:
    assert_error(await pair.shortcut.post(CHAT, json=chat_body()), 401, "invalid_api_key")
