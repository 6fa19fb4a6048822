"""An unexpected exception inside a route becomes the edge's own OpenAI-shaped 500: with the request's id,
counted under its error code, logged, and the gateway keeps serving."""

from __future__ import annotations

import logging

import httpx
import pytest

from smg.observability.metrics import Metrics
from smg.testing.gateway import RunningGateway
from tests.conftest import chat_body


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def _assert_internal_error(resp: httpx.Response, request_id: str) -> None:
    assert resp.status_code == 500
    assert resp.headers["x-request-id"] == request_id
    assert resp.headers["x-smg-error-code"] == "internal_error"
    error = {"message": "internal error", "type": "server_error", "param": None, "code": "internal_error"}
    assert resp.json() == {"error": error}


async def test_a_framework_route_that_raises_answers_500_with_the_request_id(
    gateway: RunningGateway,
    client: httpx.AsyncClient,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(gateway.context.registry, "models", _boom)
    with caplog.at_level(logging.ERROR, logger="smg.api"):
        resp = await client.get("/v1/models", headers={"x-request-id": "req-models-1"})
    _assert_internal_error(resp, "req-models-1")
    assert "unhandled error on GET /v1/models" in caplog.text and "boom" in caplog.text
    sample = metrics.registry.get_sample_value(
        "smg_http_responses_total",
        {"path": "/v1/models", "status_code": "500", "error_code": "internal_error"},
    )
    assert sample == 1.0
    assert (await client.get("/health")).status_code == 200


async def test_the_chat_endpoint_that_raises_answers_500_with_the_request_id(
    gateway: RunningGateway, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.context.chat, "complete", _boom)
    resp = await client.post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "req-chat-1"})
    _assert_internal_error(resp, "req-chat-1")
    monkeypatch.undo()
    assert (await client.post("/v1/chat/completions", json=chat_body())).status_code == 200
