"""The official openai client, unmodified, talks to the gateway as if it were OpenAI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from smg.testing.gateway import RunningGateway

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "the quick brown fox"}]


@pytest.fixture
async def oai(gateway: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


async def test_non_stream_completion_has_content_and_usage(oai: openai.AsyncOpenAI) -> None:
    done = await oai.chat.completions.create(model="mock-model", messages=MESSAGES)
    assert done.object == "chat.completion"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content == "echo: the quick brown fox"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.prompt_tokens > 0
    assert done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


async def test_stream_deltas_concatenate_to_the_non_stream_content_with_usage_last(
    oai: openai.AsyncOpenAI,
) -> None:
    whole = await oai.chat.completions.create(model="mock-model", messages=MESSAGES)
    stream = await oai.chat.completions.create(
        model="mock-model",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage == whole.usage
    assert len({c.id for c in chunks}) == 1


async def test_models_list_returns_the_worker_model(oai: openai.AsyncOpenAI) -> None:
    ids = [m.id async for m in oai.models.list()]
    assert ids == ["mock-model"]
    model = await oai.models.retrieve("mock-model")
    assert model.id == "mock-model"


async def test_unknown_model_raises_not_found_with_model_not_found_code(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert caught.value.response.headers["x-smg-error-code"] == "model_not_found"
