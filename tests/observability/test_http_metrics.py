"""HTTP-layer metrics: route templates (never raw paths) as ``path``, status and error code per response."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx

from smg.observability.metrics import Metrics
from smg.settings import AuthSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import eventually, sample
from tests.conftest import chat_body, make_settings

CHAT = "/v1/chat/completions"


def _path_labels(metrics: Metrics) -> set[str]:
    return {
        s.labels["path"]
        for family in metrics.registry.collect()
        if family.name.startswith("smg_http_")
        for s in family.samples
        if "path" in s.labels
    }


def _responses(metrics: Metrics, path: str, status: str, error_code: str = "") -> float:
    value = sample(metrics, "smg_http_responses_total", path=path, status_code=status, error_code=error_code)
    return value or 0.0


async def test_requests_are_counted_per_method_and_route_template(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    for stream in (False, True, False):
        assert (await client.post(CHAT, json=chat_body(stream=stream))).status_code == 200
    assert (
        await client.post(CHAT, content=b"{", headers={"Content-Type": "application/json"})
    ).status_code == 400
    assert (await client.get("/v1/models/mock-model")).status_code == 200
    assert (await client.get("/v1/models/nope")).status_code == 404

    await eventually(
        lambda: sample(metrics, "smg_http_requests_total", method="GET", path="/v1/models/{model:path}") == 2
    )
    assert sample(metrics, "smg_http_requests_total", method="POST", path=CHAT) == 4
    assert _responses(metrics, CHAT, "200") == 3
    assert _responses(metrics, CHAT, "400", "invalid_json") == 1
    assert _responses(metrics, "/v1/models/{model:path}", "404", "model_not_found") == 1
    assert sample(metrics, "smg_http_request_duration_seconds_count", method="POST", path=CHAT) == 4
    assert sample(metrics, "smg_http_connections_active") == 0


async def test_an_unknown_route_is_labelled_unmatched_not_by_its_raw_path(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    for raw in ("/nope", "/v1/nope/123", "/secret-abc?x=1"):
        assert (await client.get(raw)).status_code == 404

    await eventually(lambda: sample(metrics, "smg_http_requests_total", method="GET", path="unmatched") == 3)
    assert _responses(metrics, "unmatched", "404", "unknown_url") == 3
    assert _path_labels(metrics) == {"unmatched"}


async def test_a_request_refused_at_the_edge_keeps_its_route_template(
    worker: RunningWorker, start_gateway: Callable[..., Any], stack: AsyncExitStack, metrics: Metrics
) -> None:
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), auth=AuthSettings(api_keys=("data-key",)))
    )
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    assert (await client.post(CHAT, json=chat_body())).status_code == 401

    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    assert _responses(metrics, CHAT, "401", "invalid_api_key") == 1
    assert "unmatched" not in _path_labels(metrics)


# Methods the server's HTTP parser accepts (WebDAV and friends) but nobody serves here.
UNUSUAL_METHODS = ("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "PURGE",
                   "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
                   "LINK", "UNLINK", "M-SEARCH", "SOURCE")  # fmt: skip


async def test_a_method_outside_the_standard_ones_is_labelled_other_even_without_a_key(
    worker: RunningWorker, start_gateway: Callable[..., Any], stack: AsyncExitStack, metrics: Metrics
) -> None:
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), auth=AuthSettings(api_keys=("data-key",)))
    )
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    sent = 0
    for method in UNUSUAL_METHODS:
        for path in (CHAT, "/v1/models", "/nope"):
            assert (await client.request(method, path)).status_code in {401, 404, 405}
            sent += 1
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert (await client.request(method, "/v1/models")).status_code in {401, 405}

    await eventually(lambda: sample(metrics, "smg_http_connections_active") == 0)
    methods = {
        s.labels["method"]
        for family in metrics.registry.collect()
        for s in family.samples
        if "method" in s.labels
    }
    assert methods == {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}
    other = [
        sample(metrics, "smg_http_requests_total", method="other", path=p) or 0 for p in _path_labels(metrics)
    ]
    assert sum(other) == sent
