"""Request limits through the whole app: a request over a limit is refused with its own code before any
worker sees it, and a request at the limit goes through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from smg.settings import RequestLimits
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import assert_error
from tests.conftest import make_settings


def _body(messages: int, tools: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": "mock-model",
        "messages": [{"role": "user", "content": f"m{i}"} for i in range(messages)],
        "tools": [
            {"type": "function", "function": {"name": f"f{i}", "parameters": {}}} for i in range(tools)
        ],
        **extra,
    }


async def test_requests_over_a_limit_are_refused_before_any_worker_sees_them(
    worker: RunningWorker, start_gateway: Callable[..., Any]
) -> None:
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), limits=RequestLimits(max_messages=3, max_tools=2))
    )
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        messages = await client.post("/v1/chat/completions", json=_body(4, 0))
        tools = await client.post("/v1/chat/completions", json=_body(1, 3, stream=True))
        mcp = await client.post(
            "/v1/chat/completions",
            json={**_body(1, 2), "tools": [*_body(1, 2)["tools"], {"type": "mcp", "server_label": "x"}]},
        )
        refused_before_routing = worker.stats.chat_requests
        at_limit = await client.post("/v1/chat/completions", json=_body(3, 2))

    assert_error(messages, 400, "too_many_messages", param="messages")
    assert_error(tools, 400, "too_many_tools", param="tools")
    assert_error(mcp, 400, "too_many_tools", param="tools")
    assert refused_before_routing == 0
    assert at_limit.status_code == 200, at_limit.text
    assert worker.stats.chat_requests == 1
