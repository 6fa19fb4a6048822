"""Fixtures of the Responses API tests: the official openai client on an in-process gateway, and the
strict check of what the gateway sent against openai-python's own types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from smg.testing.gateway import RunningGateway


def client_of(gateway: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture
async def oai(gateway: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with client_of(gateway) as c:
        yield c


async def create(oai: openai.AsyncOpenAI, **params: Any) -> tuple[Response, dict[str, Any]]:
    """``client.responses.create(**params)``: the parsed response, and the JSON body the gateway sent,
    which must validate strictly as openai-python's `Response` (the client itself does not validate)."""
    raw = await oai.responses.with_raw_response.create(**params)
    body: dict[str, Any] = raw.http_response.json()
    Response.model_validate(body)
    return raw.parse(), body
