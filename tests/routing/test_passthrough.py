"""The pass-through path: what the client sends reaches the worker untouched, and back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker
from smg.testing.worker_render import error_body
from tests._helpers import assert_error
from tests.conftest import chat_body, make_settings

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "vendor1=opaque1,vendor2=opaque2"


async def _received(worker: RunningWorker) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as control:
        resp = await control.get("/_smg/requests")
    assert resp.status_code == 200
    requests: list[dict[str, Any]] = resp.json()
    return requests


async def test_unknown_fields_reach_the_worker_byte_for_byte(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    # Odd spacing and key order: a re-serialised body would differ in length and order.
    raw = (
        b'{ "vendor_x" : {"a": 1,  "nested": [1, 2.50, null]},\n'
        b'  "top_k": 5, "model": "mock-model",\n'
        b'  "messages": [{"role": "user", "content": "hi", "x_msg": true}] , "logit_bias": {} }'
    )
    resp = await client.post(
        "/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 200
    [seen] = await _received(worker)
    assert seen["headers"]["content-length"] == str(len(raw))
    assert list(seen["body"]) == ["vendor_x", "top_k", "model", "messages", "logit_bias"]
    assert seen["body"]["vendor_x"] == {"a": 1, "nested": [1, 2.5, None]}
    assert seen["body"]["top_k"] == 5
    assert seen["body"]["messages"][0]["x_msg"] is True


async def test_stream_request_body_reaches_the_worker_byte_for_byte(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    raw = (
        b'{"model":"mock-model","stream":true,  "top_k":5,"stream_options":{"include_usage":true},'
        b'"messages":[{"role":"user","content":"x"}]}'
    )
    async with client.stream(
        "POST", "/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"}
    ) as resp:
        await resp.aread()
    assert resp.status_code == 200
    [seen] = await _received(worker)
    assert seen["headers"]["content-length"] == str(len(raw))
    assert seen["body"]["top_k"] == 5


async def test_a_stream_without_usage_request_only_gains_include_usage_on_the_way(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    # The gateway asks the worker for usage (for token metrics) by splicing one member onto the raw body.
    raw = b'{"model":"mock-model","stream":true,  "top_k":5,"messages":[{"role":"user","content":"x"}]} \n'
    async with client.stream(
        "POST", "/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"}
    ) as resp:
        await resp.aread()
    assert resp.status_code == 200
    [seen] = await _received(worker)
    added = b',"stream_options":{"include_usage":true}'
    assert seen["headers"]["content-length"] == str(len(raw.rstrip()) + len(added))
    assert list(seen["body"]) == ["model", "stream", "top_k", "messages", "stream_options"]
    assert seen["body"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
async def test_trace_headers_and_request_id_reach_the_worker(
    client: httpx.AsyncClient, worker: RunningWorker, stream: bool
) -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE, "x-request-id": "req-abc-123"}
    async with client.stream(
        "POST", "/v1/chat/completions", json=chat_body(stream=stream), headers=headers
    ) as resp:
        await resp.aread()
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "req-abc-123"
    [seen] = await _received(worker)
    assert seen["headers"]["traceparent"] == TRACEPARENT
    assert seen["headers"]["tracestate"] == TRACESTATE
    assert seen["headers"]["x-request-id"] == "req-abc-123"


async def test_a_generated_request_id_is_returned_and_sent_to_the_worker(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    first = await client.post("/v1/chat/completions", json=chat_body())
    second = await client.post("/v1/chat/completions", json=chat_body())
    assert first.status_code == second.status_code == 200
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(ids) and ids[0] != ids[1]
    seen = await _received(worker)
    assert [s["headers"]["x-request-id"] for s in seen] == ids
    assert all("traceparent" not in s["headers"] for s in seen)


@pytest.mark.parametrize(
    "path", ["/v1/models", "/nope", "/health", "/v1/chat/completions"], ids=["ok", "404", "open", "405"]
)
async def test_every_response_carries_the_clients_request_id(client: httpx.AsyncClient, path: str) -> None:
    resp = await client.get(path, headers={"x-request-id": "mine-1"})
    assert resp.headers["x-request-id"] == "mine-1"


@pytest.fixture
async def teapot(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> AsyncIterator[tuple[httpx.AsyncClient, RunningWorker]]:
    worker: RunningWorker = await start_worker(faults=Faults(status=418))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    yield client, worker


async def test_a_workers_own_4xx_passes_through_unchanged_without_retry(
    teapot: tuple[httpx.AsyncClient, RunningWorker],
) -> None:
    client, worker = teapot
    resp = await client.post("/v1/chat/completions", json=chat_body())
    assert resp.status_code == 418
    assert resp.content == error_body("injected fault", status=418, code="injected_fault")
    assert worker.stats.chat_requests == 1


async def test_a_workers_own_4xx_passes_through_unchanged_on_a_stream(
    teapot: tuple[httpx.AsyncClient, RunningWorker],
) -> None:
    client, worker = teapot
    resp = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert resp.status_code == 418
    assert resp.content == error_body("injected fault", status=418, code="injected_fault")
    assert worker.stats.chat_requests == 1


async def test_models_are_listed_and_looked_up(client: httpx.AsyncClient) -> None:
    listed = await client.get("/v1/models")
    assert listed.status_code == 200
    assert listed.json()["object"] == "list"
    assert [m["id"] for m in listed.json()["data"]] == ["mock-model"]
    one = await client.get("/v1/models/mock-model")
    assert one.status_code == 200
    assert one.json()["id"] == "mock-model"
    assert one.json()["object"] == "model"


async def test_an_unknown_model_lookup_is_404_model_not_found(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/models/nope"), 404, "model_not_found", param="model")


async def test_a_chat_for_an_unknown_model_is_404_and_never_reaches_the_worker(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    resp = await client.post("/v1/chat/completions", json={**chat_body(), "model": "nope"})
    assert_error(resp, 404, "model_not_found", param="model")
    assert worker.stats.chat_requests == 0


@pytest.mark.parametrize(
    "stream",
    [False, True],
    ids=["non_stream", "stream"],
)
async def test_a_passed_through_worker_error_names_its_status_in_the_error_code_header(
    teapot: tuple[httpx.AsyncClient, RunningWorker], stream: bool
) -> None:
    client, _ = teapot
    resp = await client.post("/v1/chat/completions", json=chat_body(stream=stream))
    assert resp.status_code == 418
    assert resp.headers.get("x-smg-error-code") == "upstream_418"
