"""stream: true through openai-python's own stream helpers: every event validates as its event types,
numbers increase from 0, and the accumulated response equals the non-streamed one. That the events
are sent as the loop runs is tests/responses/test_stream_live.py's."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from smg.testing.gateway import RunningGateway
from tests.responses.conftest import create
from tests.responses.test_create import LOOKUP

EVENT = TypeAdapter(ResponseStreamEvent)


def _plain(value: Any) -> Any:
    """``value`` without the ``parsed`` / ``parsed_arguments`` keys the stream helper adds, and without
    the measured ``duration_ms`` of tool calls."""
    if isinstance(value, dict):
        return {
            k: _plain(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments", "duration_ms")
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def comparable(response: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between two runs of one request (ids, the creation time) and
    without the stream helper's parsed values."""
    output = [{k: v for k, v in _plain(item).items() if k != "id"} for item in response["output"]]
    drop = ("id", "created_at", "output")
    return {k: _plain(v) for k, v in response.items() if k not in drop} | {"output": output}


async def raw_events(gateway: RunningGateway, **body: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as c:
        resp = await c.post("/v1/responses", json=body | {"stream": True})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in resp.text.split("\n\n"):
        if block:
            name, data = block.split("\n")
            event = httpx.Response(200, content=data.removeprefix("data: ")).json()
            assert name == f"event: {event['type']}"
            EVENT.validate_python(event)
            events.append(event)
    return events


@pytest.mark.parametrize(
    "params",
    [
        {"input": "the quick brown fox"},
        {"input": "one two three four", "max_output_tokens": 2},
        {"input": 'CALL lookup {"q": 1}', "tools": [LOOKUP]},
    ],
    ids=["text", "incomplete", "function_call"],
)
async def test_the_accumulated_stream_equals_the_non_streamed_response(
    oai: openai.AsyncOpenAI, params: dict[str, Any]
) -> None:
    _, whole = await create(oai, model="mock-model", **params)
    async with oai.responses.stream(model="mock-model", **params) as stream:
        events = [event async for event in stream]
        # The helper's final response needs response.completed; an incomplete one ends with
        # response.incomplete, which carries the whole response itself (as OpenAI sends it).
        last = events[-1]
        final = last.response if last.type == "response.incomplete" else await stream.get_final_response()
    assert last.type == ("response.incomplete" if whole["status"] == "incomplete" else "response.completed")
    streamed = final.model_dump(mode="json", exclude_unset=True)
    assert comparable(streamed) == comparable(whole)
    assert (await oai.responses.retrieve(final.id)).id == final.id  # stored like a non-streamed one


async def test_events_follow_openai_sequence_with_increasing_numbers(gateway: RunningGateway) -> None:
    events = await raw_events(gateway, model="mock-model", input="hello")
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress"
    # One delta per delta of the worker's stream (the scripted worker streams a word at a time).
    assert [events[4]["delta"], events[5]["delta"]] == ["echo: ", "hello"]
    assert events[6]["text"] == "echo: hello"


async def test_a_streamed_request_is_counted_as_streaming(gateway: RunningGateway) -> None:
    await raw_events(gateway, model="mock-model", input="hello")
    labels = {"router_type": "http", "model": "mock-model", "endpoint": "responses", "streaming": "true"}
    assert gateway.context.metrics.registry.get_sample_value("smg_router_requests_total", labels) == 1


async def test_an_error_before_the_stream_is_an_ordinary_error(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        async with oai.responses.stream(model="no-such-model", input="hi"):
            pass
    assert caught.value.code == "model_not_found"
