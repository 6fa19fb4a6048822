"""POST /v1/completions and POST /v1/embeddings pass through to a worker serving the model, with chat's
routing, retries, errors and metrics; the official openai client talks to them unmodified."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import openai
import orjson
import pytest

from smg.observability.metrics import Metrics
from smg.testing.gateway import RunningGateway
from smg.testing.worker import Faults, RunningWorker
from smg.testing.worker_render import error_body
from tests._helpers import assert_error, sample
from tests.conftest import make_settings

PROMPT = "the quick brown fox"
ROUTES = {"completions": "/v1/completions", "embeddings": "/v1/embeddings"}
BODIES: dict[str, dict[str, Any]] = {
    "completions": {"model": "mock-model", "prompt": PROMPT},
    "embeddings": {"model": "mock-model", "input": PROMPT},
}


def _requests(worker: RunningWorker, endpoint: str) -> int:
    stats = worker.stats
    return stats.completions_requests if endpoint == "completions" else stats.embeddings_requests


@pytest.fixture
async def oai(gateway: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


async def test_the_openai_client_gets_a_completion(oai: openai.AsyncOpenAI) -> None:
    done = await oai.completions.create(model="mock-model", prompt=PROMPT)
    assert done.object == "text_completion"
    assert done.id.startswith("cmpl-mock-")
    assert [(c.index, c.text, c.finish_reason) for c in done.choices] == [(0, "echo: " + PROMPT, "stop")]
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (4, 5)


async def test_the_openai_client_streams_a_completion_with_usage_last(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.completions.create(
        model="mock-model", prompt=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: " + PROMPT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 9


async def test_a_completions_stream_without_a_usage_request_gets_no_usage_chunk(
    oai: openai.AsyncOpenAI, metrics: Metrics
) -> None:
    # The gateway asks the worker for usage (token metrics) and keeps that chunk from the client.
    stream = await oai.completions.create(model="mock-model", prompt=PROMPT, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert sample(metrics, "smg_router_tokens_total", model="mock-model", type="output") == 5


async def test_the_openai_client_gets_embeddings_as_base64_and_as_floats(oai: openai.AsyncOpenAI) -> None:
    # openai-python asks for base64 unless told otherwise, and decodes it to floats.
    default = await oai.embeddings.create(model="mock-model", input=[PROMPT, "other"])
    floats = await oai.embeddings.create(model="mock-model", input=[PROMPT, "other"], encoding_format="float")
    assert default.object == "list"
    assert [e.index for e in default.data] == [0, 1]
    assert [e.embedding for e in default.data] == [e.embedding for e in floats.data]
    assert len(default.data[0].embedding) == 8
    assert default.data[0].embedding != default.data[1].embedding
    assert (default.usage.prompt_tokens, default.usage.total_tokens) == (5, 5)


@pytest.mark.parametrize("endpoint", ["completions", "embeddings"])
async def test_the_body_reaches_the_worker_byte_for_byte_with_the_trace_headers(
    client: httpx.AsyncClient, worker: RunningWorker, endpoint: str
) -> None:
    field = "prompt" if endpoint == "completions" else "input"
    raw = b'{ "vendor_x" : {"a": 1,  "b": [1, 2.50]},\n "model": "mock-model", "%s" : "hi" }' % field.encode()
    headers = {"Content-Type": "application/json", "x-request-id": "req-1", "traceparent": _TRACEPARENT}
    resp = await client.post(ROUTES[endpoint], content=raw, headers=headers)
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "req-1"
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as control:
        [seen] = (await control.get("/_smg/requests")).json()
    assert seen["headers"]["content-length"] == str(len(raw))
    assert list(seen["body"]) == ["vendor_x", "model", field]
    assert seen["headers"]["x-request-id"] == "req-1"
    assert seen["headers"]["traceparent"] == _TRACEPARENT


_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("endpoint", ["completions", "embeddings"])
async def test_an_unknown_model_is_404_and_never_reaches_a_worker(
    client: httpx.AsyncClient, worker: RunningWorker, endpoint: str
) -> None:
    resp = await client.post(ROUTES[endpoint], json={**BODIES[endpoint], "model": "nope"})
    assert_error(resp, 404, "model_not_found", param="model")
    assert _requests(worker, endpoint) == 0


@pytest.mark.parametrize("endpoint", ["completions", "embeddings"])
async def test_a_missing_model_or_bad_json_is_400_and_never_reaches_a_worker(
    client: httpx.AsyncClient, worker: RunningWorker, endpoint: str
) -> None:
    body = {k: v for k, v in BODIES[endpoint].items() if k != "model"}
    error = assert_error(
        await client.post(ROUTES[endpoint], json=body), 400, "invalid_request", param="model"
    )
    assert "'model'" in error["message"]
    bad = await client.post(
        ROUTES[endpoint], content=b'{"model": ', headers={"Content-Type": "application/json"}
    )
    assert_error(bad, 400, "invalid_json")
    assert _requests(worker, endpoint) == 0


@pytest.mark.parametrize(
    ("endpoint", "stream"), [("completions", False), ("completions", True), ("embeddings", False)]
)
async def test_a_failing_attempt_is_retried_and_counted_as_a_worker_error(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
    endpoint: str,
    stream: bool,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(fail_every=2, fail_status=503))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    body = BODIES[endpoint] | ({"stream": True} if stream else {})
    for _ in range(2):  # the worker's 2nd request fails with 503: the gateway sends it again
        resp = await client.post(ROUTES[endpoint], json=body)
        assert resp.status_code == 200, resp.text
    assert _requests(worker, endpoint) == 3
    assert sample(metrics, "smg_worker_retries_total") == 1
    assert sample(metrics, "smg_worker_errors_total", error_type="status_503") == 1


@pytest.mark.parametrize(
    ("endpoint", "stream"), [("completions", False), ("completions", True), ("embeddings", False)]
)
async def test_a_workers_error_passes_through_with_its_status_code(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    endpoint: str,
    stream: bool,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(status=500))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    body = BODIES[endpoint] | ({"stream": True} if stream else {})
    resp = await client.post(ROUTES[endpoint], json=body)
    assert resp.status_code == 500
    assert resp.content == error_body("injected fault", status=500, code="injected_fault")
    assert resp.headers["x-smg-error-code"] == "upstream_500"


async def test_a_broken_completions_stream_ends_with_an_error_event_and_done(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    metrics: Metrics,
) -> None:
    worker: RunningWorker = await start_worker(faults=Faults(drop_after_chunks=2))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    resp = await client.post("/v1/completions", json=BODIES["completions"] | {"stream": True})
    assert resp.status_code == 200
    events = [e.removeprefix("data: ") for e in resp.text.split("\n\n") if e]
    assert [orjson.loads(e)["choices"][0]["text"] for e in events[:2]] == ["echo: ", "the "]
    assert orjson.loads(events[-2])["error"]["code"] == "upstream_protocol_error"
    assert events[-1] == "[DONE]"
    labels = {"router_type": "http", "model": "mock-model", "endpoint": "completions", "streaming": "true"}
    assert (
        sample(metrics, "smg_router_request_errors_total", **labels, error_type="upstream_protocol_error")
        == 1
    )


async def test_router_and_http_metrics_name_the_endpoint(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, metrics: Metrics
) -> None:
    await oai.completions.create(model="mock-model", prompt=PROMPT)
    await oai.completions.create(model="mock-model", prompt=PROMPT, stream=True)
    await oai.embeddings.create(model="mock-model", input=PROMPT)
    await oai.embeddings.create(model="mock-model", input=PROMPT)

    def routed(endpoint: str, streaming: str) -> float | None:
        labels = {"router_type": "http", "model": "mock-model", "endpoint": endpoint, "streaming": streaming}
        return sample(metrics, "smg_router_requests_total", **labels)

    assert (routed("completions", "false"), routed("completions", "true")) == (1, 1)
    assert (routed("embeddings", "false"), routed("chat", "false")) == (2, None)
    assert sample(metrics, "smg_http_requests_total", method="POST", path="/v1/completions") == 2
    assert sample(metrics, "smg_http_requests_total", method="POST", path="/v1/embeddings") == 2
    # completions 2 x (4 in, 5 out) and embeddings 2 x (4 in, 0 out)
    assert sample(metrics, "smg_router_tokens_total", model="mock-model", type="input") == 16
    assert sample(metrics, "smg_router_tokens_total", model="mock-model", type="output") == 10
    assert sample(metrics, "smg_router_ttft_seconds_count", model="mock-model") == 1
