"""``include`` on POST /v1/responses: no includable is served, so an empty (or null) ``include`` asks for
nothing and is accepted (openai-agents sends ``include: []`` with every request), while one that asks
for something is refused naming the field."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from smg.testing.worker import RunningWorker
from tests.responses.conftest import create


@pytest.mark.parametrize("include", [[], None])
async def test_an_include_that_asks_for_nothing_is_accepted(oai: openai.AsyncOpenAI, include: Any) -> None:
    response, body = await create(
        oai, model="mock-model", input="hello there", extra_body={"include": include}
    )
    assert response.status == "completed"
    assert response.output_text == "echo: hello there"
    assert "include" not in body


async def test_an_include_that_asks_for_something_is_refused_naming_it(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model="mock-model", input="hi", include=["message.output_text.logprobs"])
    assert caught.value.code == "invalid_request"
    assert caught.value.param == "include"
    assert caught.value.response.headers["x-smg-error-code"] == "invalid_request"
    assert worker.stats.chat_requests == 0
