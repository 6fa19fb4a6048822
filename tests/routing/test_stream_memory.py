"""What a pass-through stream keeps while it is relayed: nothing of its parsed request once the worker
has it, however long a slow client keeps the stream open."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import httpx

from smg.protocol import ChatRequest
from smg.testing.worker import Faults
from tests.conftest import chat_body, make_settings


async def test_a_relayed_stream_keeps_nothing_of_its_parsed_request(
    start_worker: Callable[..., Any], start_gateway: Callable[..., Any]
) -> None:
    # After its first event the worker waits a minute: the stream stays open while we look.
    worker = await start_worker(faults=Faults(chunk_delay_ms=60_000))
    gw = await start_gateway(make_settings((worker.url,)))
    body = chat_body("a long prompt " * 2000, stream=True)
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        async with asyncio.timeout(10):
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    break
        assert [o for o in gc.get_objects() if isinstance(o, ChatRequest)] == []
