"""API keys per plane, and every malformed request answered with its documented 4xx JSON error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from smg.settings import AuthSettings, ServerSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import ERROR_KEYS, assert_error
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"
DATA = {"Authorization": "Bearer data-key"}
ADMIN = {"Authorization": "Bearer admin-key"}


@dataclass
class Keyed:
    client: httpx.AsyncClient
    worker: RunningWorker
    start_worker: Callable[..., Any]


@pytest.fixture
async def keyed(
    worker: RunningWorker,
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
) -> Keyed:
    auth = AuthSettings(api_keys=("data-key",), admin_api_keys=("admin-key",))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), auth=auth))
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    return Keyed(client, worker, start_worker)


# --- auth ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [DATA, {"x-api-key": "data-key"}, {"Authorization": "bearer data-key"}], ids=str
)
async def test_a_data_key_opens_the_data_plane(keyed: Keyed, headers: dict[str, str]) -> None:
    assert (await keyed.client.post(CHAT, json=chat_body(), headers=headers)).status_code == 200
    assert (await keyed.client.get("/v1/models", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"x-api-key": "wrong"},
        {"Authorization": "Basic ZGF0YS1rZXk6"},
        {"Authorization": "Bearer"},
        ADMIN,
    ],
    ids=["none", "wrong_bearer", "wrong_x_api_key", "basic", "empty_bearer", "admin_key"],
)
async def test_a_missing_or_wrong_key_on_the_data_plane_is_401(keyed: Keyed, headers: dict[str, str]) -> None:
    for resp in (
        await keyed.client.post(CHAT, json=chat_body(), headers=headers),
        await keyed.client.get("/v1/models", headers=headers),
    ):
        assert_error(resp, 401, "invalid_api_key")
    assert keyed.worker.stats.chat_requests == 0


async def test_a_data_key_on_the_admin_api_is_403(keyed: Keyed) -> None:
    assert_error(await keyed.client.get("/workers", headers=DATA), 403, "forbidden")
    assert_error(
        await keyed.client.post("/workers", json={"url": "http://x"}, headers=DATA), 403, "forbidden"
    )


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
async def test_no_or_a_wrong_key_on_the_admin_api_is_401(keyed: Keyed, headers: dict[str, str]) -> None:
    assert_error(await keyed.client.get("/workers", headers=headers), 401, "invalid_api_key")


async def test_the_admin_key_lists_adds_and_removes_workers(keyed: Keyed) -> None:
    listed = await keyed.client.get("/workers", headers=ADMIN)
    assert listed.status_code == 200
    assert [w["url"] for w in listed.json()["workers"]] == [keyed.worker.url]

    extra: RunningWorker = await keyed.start_worker(models=("other-model",))
    added = await keyed.client.post("/workers", json={"url": extra.url, "api_key": "sk-up"}, headers=ADMIN)
    assert added.status_code == 201
    card = added.json()
    assert card["url"] == extra.url
    assert card["models"] == ["other-model"]
    assert card["has_api_key"] is True
    assert "sk-up" not in added.text
    one = await keyed.client.get(f"/workers/{card['id']}", headers=ADMIN)
    assert one.status_code == 200
    assert one.json() == card
    assert (
        await keyed.client.post(CHAT, json=chat_body(model="other-model"), headers=DATA)
    ).status_code == 200

    removed = await keyed.client.delete(f"/workers/{card['id']}", headers=ADMIN)
    assert removed.status_code == 200
    assert removed.json()["removed"]["url"] == extra.url
    listed = await keyed.client.get("/workers", headers=ADMIN)
    assert [w["url"] for w in listed.json()["workers"]] == [keyed.worker.url]
    resp = await keyed.client.post(CHAT, json=chat_body(model="other-model"), headers=DATA)
    assert_error(resp, 404, "model_not_found")


@pytest.mark.parametrize("path", ["/health", "/liveness", "/readiness"])
async def test_probes_are_open_without_a_key(keyed: Keyed, path: str) -> None:
    assert (await keyed.client.get(path)).status_code == 200


# --- malformed requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    status: int
    code: str
    content: bytes | None = None
    json: Any = None
    param: str | None = None


_CT = {"Content-Type": "application/json"}
MALFORMED = {
    "invalid_json": Bad("POST", CHAT, 400, "invalid_json", content=b'{"model": "mock-model",'),
    "empty_body": Bad("POST", CHAT, 400, "invalid_json", content=b""),
    "non_utf8": Bad("POST", CHAT, 400, "invalid_json", content=b'{"model": "\xff\xfe"}'),
    "body_is_array": Bad("POST", CHAT, 400, "invalid_request", json=[chat_body()]),
    "body_is_string": Bad("POST", CHAT, 400, "invalid_request", json="hello"),
    "missing_model": Bad("POST", CHAT, 400, "invalid_request", json={"messages": []}, param="model"),
    "model_not_string": Bad(
        "POST", CHAT, 400, "invalid_request", json={**chat_body(), "model": 7}, param="model"
    ),
    "missing_messages": Bad(
        "POST", CHAT, 400, "invalid_request", json={"model": "mock-model"}, param="messages"
    ),
    "empty_messages": Bad("POST", CHAT, 400, "invalid_request", json=chat_body() | {"messages": []}),
    "message_without_role": Bad(
        "POST", CHAT, 400, "invalid_request", json=chat_body() | {"messages": [{"content": "x"}]}
    ),
    "messages_not_array": Bad(
        "POST", CHAT, 400, "invalid_request", json=chat_body() | {"messages": "hi"}, param="messages"
    ),
    "stream_not_bool": Bad(
        "POST", CHAT, 400, "invalid_request", json=chat_body(stream="yes"), param="stream"
    ),
    "stream_options_not_object": Bad(
        "POST", CHAT, 400, "invalid_request", json=chat_body(stream_options=[1]), param="stream_options"
    ),
    "tools_not_array": Bad("POST", CHAT, 400, "invalid_request", json=chat_body(tools={}), param="tools"),
    "tool_without_type": Bad("POST", CHAT, 400, "invalid_request", json=chat_body(tools=[{"x": 1}])),
    "oversized_body": Bad("POST", CHAT, 413, "payload_too_large", json=chat_body("x" * 2000)),
    "unknown_route": Bad("GET", "/nope", 404, "unknown_url"),
    "unknown_v1_route": Bad("POST", "/v1/completions-nope", 404, "unknown_url", json={}),
    "wrong_method": Bad("GET", CHAT, 405, "method_not_allowed"),
    "wrong_method_models": Bad("DELETE", "/v1/models", 405, "method_not_allowed"),
    "admin_missing_url": Bad("POST", "/workers", 400, "invalid_request", json={}),
    "admin_extra_field": Bad("POST", "/workers", 400, "invalid_request", json={"url": "http://a", "x": 1}),
    "admin_bad_scheme": Bad("POST", "/workers", 400, "invalid_request", json={"url": "ftp://a"}, param="url"),
    "admin_invalid_json": Bad("POST", "/workers", 400, "invalid_json", content=b"{nope"),
    "admin_unknown_worker": Bad("DELETE", "/workers/unknown", 404, "worker_not_found"),
    "admin_get_unknown_worker": Bad("GET", "/workers/unknown", 404, "worker_not_found"),
}


@pytest.fixture
async def small(
    worker: RunningWorker, start_gateway: Callable[..., Any], stack: AsyncExitStack
) -> httpx.AsyncClient:
    server = ServerSettings(max_payload_size=1024, host="127.0.0.1", port=0, prometheus_port=0)
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), server=server))
    return await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))


@pytest.fixture
async def after_check(small: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway still serves a good request after the bad one."""
    yield small
    resp = await small.post(CHAT, json=chat_body())
    assert resp.status_code == 200


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_request_gets_its_documented_4xx_error(
    after_check: httpx.AsyncClient, worker: RunningWorker, bad: Bad
) -> None:
    if bad.content is not None:
        resp = await after_check.request(bad.method, bad.path, content=bad.content, headers=_CT)
    elif bad.json is not None:
        resp = await after_check.request(bad.method, bad.path, json=bad.json)
    else:
        resp = await after_check.request(bad.method, bad.path)
    assert_error(resp, bad.status, bad.code, param=bad.param)
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert worker.stats.chat_requests == 0


async def test_an_oversized_chunked_body_is_413(after_check: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    resp = await after_check.post(CHAT, content=chunks(), headers=_CT)
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "payload_too_large")


async def test_adding_a_registered_worker_again_is_409(
    after_check: httpx.AsyncClient, worker: RunningWorker
) -> None:
    for url in (worker.url, worker.url + "/"):
        assert_error(await after_check.post("/workers", json={"url": url}), 409, "worker_exists")


async def test_every_gateway_error_body_has_exactly_the_openai_keys(after_check: httpx.AsyncClient) -> None:
    resp = await after_check.post(CHAT, content=b"[", headers=_CT)
    assert resp.status_code == 400
    assert list(resp.json()) == ["error"]
    assert set(resp.json()["error"]) == ERROR_KEYS
