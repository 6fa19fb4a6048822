"""Every error class carries the status, OpenAI type and code the `smg.errors` table documents."""

from __future__ import annotations

import inspect

import pytest

import smg.errors as errors_module
from smg.errors import (
    AdmissionQueueFull,
    AdmissionQueueTimeout,
    AuthenticationError,
    ConfigError,
    Conflict,
    InvalidJson,
    InvalidRequest,
    KeyExists,
    KeyNotFound,
    KeyRateLimited,
    KeyStoreError,
    KeyStoreUnavailable,
    McpServerForbidden,
    MethodNotAllowed,
    ModelForbidden,
    ModelNotFound,
    NoAvailableWorkers,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RequestHeadTooLarge,
    ResponseNotFound,
    ResponseStoreError,
    ResponseStoreUnavailable,
    ServiceUnavailable,
    SmgError,
    StoreError,
    TooManyRequests,
    UnknownUrl,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
    WorkerExists,
    WorkerNotFound,
)

# class, status, code, OpenAI error type
TABLE: list[tuple[type[SmgError], int, str, str]] = [
    (SmgError, 500, "internal_error", "server_error"),
    (InvalidRequest, 400, "invalid_request", "invalid_request_error"),
    (InvalidJson, 400, "invalid_json", "invalid_request_error"),
    (AuthenticationError, 401, "invalid_api_key", "authentication_error"),
    (PermissionDenied, 403, "forbidden", "permission_error"),
    (ModelForbidden, 403, "model_forbidden", "permission_error"),
    (McpServerForbidden, 403, "mcp_server_forbidden", "permission_error"),
    (KeyNotFound, 404, "key_not_found", "invalid_request_error"),
    (KeyExists, 409, "key_exists", "invalid_request_error"),
    (KeyRateLimited, 429, "key_rate_limited", "rate_limit_error"),
    (KeyStoreError, 500, "key_store_error", "server_error"),
    (KeyStoreUnavailable, 503, "key_store_error", "server_error"),
    (NotFound, 404, "not_found", "invalid_request_error"),
    (UnknownUrl, 404, "unknown_url", "invalid_request_error"),
    (ModelNotFound, 404, "model_not_found", "invalid_request_error"),
    (WorkerNotFound, 404, "worker_not_found", "invalid_request_error"),
    (ResponseNotFound, 404, "response_not_found", "invalid_request_error"),
    (StoreError, 500, "internal_error", "server_error"),
    (ResponseStoreError, 500, "response_store_error", "server_error"),
    (ResponseStoreUnavailable, 503, "response_store_error", "server_error"),
    (MethodNotAllowed, 405, "method_not_allowed", "invalid_request_error"),
    (Conflict, 409, "conflict", "invalid_request_error"),
    (WorkerExists, 409, "worker_exists", "invalid_request_error"),
    (PayloadTooLarge, 413, "payload_too_large", "invalid_request_error"),
    (RequestHeadTooLarge, 431, "request_header_too_large", "invalid_request_error"),
    (TooManyRequests, 429, "rate_limited", "rate_limit_error"),
    (AdmissionQueueFull, 429, "admission_queue_full", "rate_limit_error"),
    (UpstreamError, 502, "upstream_error", "server_error"),
    (UpstreamConnectError, 502, "upstream_unavailable", "server_error"),
    (UpstreamProtocolError, 502, "upstream_protocol_error", "server_error"),
    (UpstreamTimeout, 504, "upstream_timeout", "server_error"),
    (ServiceUnavailable, 503, "service_unavailable", "server_error"),
    (NoAvailableWorkers, 503, "no_available_workers", "server_error"),
    (AdmissionQueueTimeout, 503, "admission_queue_timeout", "server_error"),
]

# Classes whose status is not a fixed HTTP status: start-up only, or the worker's own status.
SPECIAL = {ConfigError, UpstreamStatusError}


@pytest.mark.parametrize(("cls", "status", "code", "type_"), TABLE, ids=[row[0].__name__ for row in TABLE])
def test_each_error_class_has_its_documented_status_code_and_type(
    cls: type[SmgError], status: int, code: str, type_: str
) -> None:
    assert (cls.status, cls.code, cls.type) == (status, code, type_)


def test_every_error_class_in_the_module_is_in_the_table() -> None:
    defined = {
        obj
        for _name, obj in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(obj, SmgError) and obj.__module__ == errors_module.__name__
    }

    assert defined == {row[0] for row in TABLE} | SPECIAL


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (InvalidJson, InvalidRequest),
        (UnknownUrl, NotFound),
        (ModelNotFound, NotFound),
        (WorkerNotFound, NotFound),
        (WorkerExists, Conflict),
        (KeyExists, Conflict),
        (KeyNotFound, NotFound),
        (ModelForbidden, PermissionDenied),
        (McpServerForbidden, PermissionDenied),
        (UpstreamConnectError, UpstreamError),
        (UpstreamProtocolError, UpstreamError),
        (UpstreamTimeout, UpstreamError),
        (UpstreamStatusError, UpstreamError),
        (NoAvailableWorkers, ServiceUnavailable),
        (AdmissionQueueTimeout, ServiceUnavailable),
        (ConfigError, SmgError),
    ],
)
def test_each_error_sits_under_its_documented_parent(child: type[SmgError], parent: type[SmgError]) -> None:
    assert issubclass(child, parent)


def test_config_error_has_its_own_code() -> None:
    assert ConfigError("bad flag").code == "invalid_config"


def test_admission_queue_full_asks_for_retry_after() -> None:
    err = AdmissionQueueFull("busy", retry_after_secs=6)

    assert err.headers() == {"Retry-After": "6"}


def test_a_key_over_its_rate_asks_for_retry_after() -> None:
    assert KeyRateLimited("slow down", retry_after_secs=3).headers() == {"Retry-After": "3"}


@pytest.mark.parametrize("cls", [row[0] for row in TABLE if not issubclass(row[0], TooManyRequests)])
def test_other_errors_ask_for_no_extra_headers(cls: type[SmgError]) -> None:
    err = ModelNotFound("m") if cls is ModelNotFound else cls("x")

    assert err.headers() == {}


def test_upstream_status_error_carries_the_worker_status_body_and_url() -> None:
    err = UpstreamStatusError(418, b'{"error":"teapot"}', content_type="application/json", worker="http://w")

    assert (err.upstream_status, err.body, err.content_type, err.worker) == (
        418,
        b'{"error":"teapot"}',
        "application/json",
        "http://w",
    )
    assert isinstance(err, UpstreamError)


def test_upstream_errors_carry_the_worker_url() -> None:
    assert UpstreamTimeout("slow", worker="http://w").worker == "http://w"


def test_model_not_found_names_the_model_param() -> None:
    err = ModelNotFound("gpt-x")

    assert (err.model, err.param) == ("gpt-x", "model")
