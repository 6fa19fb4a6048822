from __future__ import annotations

import httpx

from tests.conftest import chat_body


async def test_non_stream_chat_passes_through(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", json=chat_body("hi there"))
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "echo: hi there"
    assert resp.headers["x-request-id"]


async def test_stream_chat_ends_with_done(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=chat_body("a b", stream=True)) as resp:
        body = b"".join([chunk async for chunk in resp.aiter_bytes()])
    assert resp.status_code == 200
    assert body.endswith(b"data: [DONE]\n\n")
