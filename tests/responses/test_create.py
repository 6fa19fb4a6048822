"""POST /v1/responses without MCP tools, through the official openai client and a real scripted worker."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from smg.observability.metrics import Metrics
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests.responses.conftest import create

LOOKUP = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


async def worker_requests(worker: RunningWorker) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as c:
        recorded: list[dict[str, object]] = (await c.get("/_smg/requests")).json()
        return recorded


async def test_text_input_is_answered_with_one_message_and_usage(oai: openai.AsyncOpenAI) -> None:
    before = int(time.time())
    response, body = await create(oai, model="mock-model", input="the quick brown fox")
    assert before <= response.created_at <= time.time()
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output_text == "echo: the quick brown fox"
    assert [item.type for item in response.output] == ["message"]
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert body["smg"] == {"tool_calls": [], "iterations": 1, "stop_reason": "completed"}


async def test_instructions_and_message_items_become_chat_messages(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    await create(
        oai,
        model="mock-model",
        instructions="be brief",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"role": "assistant", "content": "answer"},
            {"type": "message", "role": "developer", "content": "rule"},
            {"role": "user", "content": "second"},
        ],
        temperature=0.5,
        max_output_tokens=50,
    )
    (sent,) = await worker_requests(worker)
    body = sent["body"]
    assert isinstance(body, dict)
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "system", "content": "rule"},
        {"role": "user", "content": "second"},
    ]
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 50


async def test_client_function_call_is_returned_and_its_output_continues_the_conversation(
    oai: openai.AsyncOpenAI,
) -> None:
    first, _ = await create(oai, model="mock-model", input='CALL lookup {"q": 1}', tools=[LOOKUP])
    (call,) = first.output
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.call_id) == ("lookup", '{"q": 1}', "call_1_0")
    assert first.status == "completed"
    second, _ = await create(
        oai,
        model="mock-model",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "forty-two"}],
        tools=[LOOKUP],
    )
    assert second.output_text == "tool results: forty-two"
    assert second.previous_response_id == first.id


async def test_a_reply_cut_by_max_output_tokens_is_incomplete(oai: openai.AsyncOpenAI) -> None:
    response, _ = await create(oai, model="mock-model", input="one two three four five", max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "echo: one"


@pytest.mark.parametrize("field", ["reasoning", "frobnicate", "truncation"])
async def test_an_unsupported_field_is_refused_naming_it(oai: openai.AsyncOpenAI, field: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model="mock-model", input="hi", extra_body={field: {"x": 1}})
    assert caught.value.code == "invalid_request"
    assert caught.value.param == field
    assert caught.value.response.headers["x-smg-error-code"] == "invalid_request"


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "item_reference", "id": "x"}, "input[0].type"),
        ({"role": "tool", "content": "x"}, "input[0].role"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}, "input[0].content[0]"),
        ({"type": "function_call_output", "call_id": "c"}, "input[0].output"),
    ],
)
async def test_an_unsupported_input_item_is_refused_naming_it(
    gateway: RunningGateway, item: dict[str, object], param: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        resp = await c.post("/v1/responses", json={"model": "mock-model", "input": [item]})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "invalid_request",
        param,
        "invalid_request_error",
    )


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("temperature", True, "temperature"),
        ("max_output_tokens", 0, "max_output_tokens"),
        ("max_tool_calls", "2", "max_tool_calls"),
        ("metadata", {"k": 1}, "metadata"),
        ("store", "yes", "store"),
        ("input", [], "input"),
        ("tools", [{"type": "web_search"}], "tools[0].type"),
        ("tool_choice", {"type": "mcp", "server_label": "x"}, "tool_choice"),
    ],
)
async def test_an_ill_typed_field_is_refused_naming_it_and_nothing_reaches_the_worker(
    gateway: RunningGateway, worker: RunningWorker, field: str, value: object, param: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        resp = await c.post("/v1/responses", json={"model": "mock-model", "input": "hi", field: value})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param
    assert resp.headers["x-smg-error-code"] == "invalid_request"
    assert worker.stats.chat_requests == 0


async def test_an_unknown_model_is_404_model_not_found(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.responses.create(model="no-such-model", input="hi")
    assert caught.value.code == "model_not_found"


async def test_router_metrics_count_the_responses_endpoint(oai: openai.AsyncOpenAI, metrics: Metrics) -> None:
    await oai.responses.create(model="mock-model", input="hi")
    labels = {"router_type": "http", "model": "mock-model", "streaming": "false"}
    sample = metrics.registry.get_sample_value
    assert sample("smg_router_requests_total", {**labels, "endpoint": "responses"}) == 1
    assert sample("smg_router_requests_total", {**labels, "endpoint": "chat"}) is None
    assert sample("smg_http_requests_total", {"method": "POST", "path": "/v1/responses"}) == 1
