"""A JSON body that names a key twice in one object, at any depth, is refused with 400
``duplicate_json_key`` before anything is forwarded or changed: on the chat route and on the admin API.
Bodies without duplicates still reach the worker byte for byte; odd input never gets a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smg.settings import AuthSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import assert_error
from tests.conftest import make_settings

CHAT = "/v1/chat/completions"
JSON = {"Content-Type": "application/json"}


async def _received(worker: RunningWorker) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as control:
        resp = await control.get("/_smg/requests")
    assert resp.status_code == 200
    requests: list[dict[str, Any]] = resp.json()
    return requests


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"model":"mock-model","model":"other","messages":[{"role":"user","content":"hi"}]}', "model"),
        (b'{"model":"other","messages":[{"role":"user","content":"hi"}],"model":"mock-model"}', "model"),
        (b'{"model":"mock-model","\\u006dodel":"other","messages":[{"role":"user","content":"x"}]}', "model"),
        (b'{"model":"mock-model","messages":[{"role":"user","role":"system","content":"x"}]}', "role"),
        (
            b'{"model":"mock-model","messages":[{"role":"user","content":"x"}],"stream":true,'
            b'"stream_options":{"include_usage":true,"include_usage":false}}',
            "include_usage",
        ),
        (
            b'{"model":"mock-model","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function",'
            b'"function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string",'
            b'"type":"integer"}}}}}]}',
            "type",
        ),
        (b'{"model":"mock-model","messages":[{"role":"user","content":"x"}],"x":{"":1,"":2}}', ""),
    ],
    ids=["top-level", "top-level-last-wins", "escaped", "in-a-message", "stream-options", "deep", "empty"],
)
async def test_a_duplicate_key_is_refused_and_the_worker_receives_nothing(
    client: httpx.AsyncClient, worker: RunningWorker, raw: bytes, key: str
) -> None:
    resp = await client.post(CHAT, content=raw, headers=JSON)

    error = assert_error(resp, 400, "duplicate_json_key", param=key)
    assert error["type"] == "invalid_request_error"
    assert worker.stats.chat_requests == 0
    assert await _received(worker) == []


async def test_a_duplicate_nested_deeper_than_a_fast_parser_goes_is_still_found(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    deep = b'{"a":1,"a":2}'
    for _ in range(300):
        deep = b'{"n":' + deep + b"}"
    raw = b'{"model":"mock-model","messages":[{"role":"user","content":"x"}],"x":' + deep + b"}"

    assert_error(await client.post(CHAT, content=raw, headers=JSON), 400, "duplicate_json_key", param="a")
    assert worker.stats.chat_requests == 0


async def test_equal_keys_in_different_objects_pass_byte_for_byte(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    raw = (
        b'{"model":"mock-model" , "messages":[{"role":"user","content":"model: a, model: b"},'
        b' {"role":"assistant","content":"\\"model\\":\\"x\\""}], "meta":{"model":"x","meta":{"model":"y"}},'
        b'"max_tokens": 5}'
    )
    resp = await client.post(CHAT, content=raw, headers=JSON)

    assert resp.status_code == 200, resp.text
    [seen] = await _received(worker)
    assert seen["headers"]["content-length"] == str(len(raw))
    assert seen["body"]["meta"] == {"model": "x", "meta": {"model": "y"}}


async def test_a_duplicate_in_a_streaming_request_is_refused_before_the_stream_starts(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    raw = b'{"model":"mock-model","stream":true,"stream":false,"messages":[{"role":"user","content":"x"}]}'
    async with client.stream("POST", CHAT, content=raw, headers=JSON) as resp:
        await resp.aread()

    assert_error(resp, 400, "duplicate_json_key", param="stream")
    assert worker.stats.chat_requests == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'"model"',
        b"null",
        b'{"model":NaN,"model":1}',
        b'{"a":1,"a":2',
        b'{"a":"\\ud800","a":1}',
        b'{"a":"\xff","a":1}',
        b'{"a":' + b"9" * 5000 + b',"a":1}',
        b"[" * 2000 + b"]" * 2000,
        b'{"a":' + b"[" * 1000 + b"]" * 1000 + b',"a":1}',
        b'{"model":"mock-model","messages":[{"role":"user","content":"x"}],"x":'
        + b"[" * 1000
        + b"]" * 1000
        + b"}",
        b'\xef\xbb\xbf{"a":1,"a":2}',
        b'{"a":1}{"a":1}',
    ],
)
async def test_odd_bodies_get_a_client_error_never_a_500(
    client: httpx.AsyncClient, worker: RunningWorker, raw: bytes
) -> None:
    resp = await client.post(CHAT, content=raw, headers=JSON)

    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert worker.stats.chat_requests == 0


# --- admin API ---------------------------------------------------------------------------------------


@pytest.fixture
async def admin(start_gateway: Callable[..., Any], worker: RunningWorker) -> httpx.AsyncClient:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    return httpx.AsyncClient(base_url=gw.url, timeout=10, headers=JSON)


async def test_admin_posts_refuse_duplicate_keys_and_change_nothing(
    admin: httpx.AsyncClient, worker: RunningWorker
) -> None:
    async with admin:
        before = (await admin.get("/workers")).json()
        add_worker = await admin.post(
            "/workers", content=b'{"url":"http://127.0.0.1:9","url":"' + worker.url.encode() + b'"}'
        )
        add_server = await admin.post(
            "/mcp/servers",
            content=b'{"name":"a","name":"b","transport":"streamable-http","url":"http://127.0.0.1:9/mcp",'
            b'"dry_run":true}',
        )
        call = await admin.post("/mcp/servers/none/tools/t/call", content=b'{"arguments":{"x":1,"x":2}}')
        after = (await admin.get("/workers")).json()
        servers = (await admin.get("/mcp/servers")).json()

    assert_error(add_worker, 400, "duplicate_json_key", param="url")
    assert_error(add_server, 400, "duplicate_json_key", param="name")
    assert_error(call, 400, "duplicate_json_key", param="x")
    assert after == before
    assert servers == {"servers": []}


async def test_admin_posts_without_duplicates_still_work(
    start_gateway: Callable[..., Any], worker: RunningWorker
) -> None:
    gw: RunningGateway = await start_gateway(make_settings(auth=AuthSettings()))
    async with httpx.AsyncClient(base_url=gw.url, timeout=10, headers=JSON) as admin:
        added = await admin.post("/workers", content=b'{"url":"' + worker.url.encode() + b'"}')
        malformed = await admin.post("/workers", content=b'{"url":')

    assert added.status_code == 201, added.text
    assert added.json()["url"] == worker.url
    assert_error(malformed, 400, "invalid_json")
