"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from smg.errors import (
    InvalidJson,
    InvalidRequest,
    MethodNotAllowed,
    SmgError,
    UnknownUrl,
    UpstreamStatusError,
)
from smg.protocol import error_payload

log = logging.getLogger("smg.api")
ERROR_CODE_HEADER = "X-SMG-Error-Code"


def error_response(err: SmgError) -> Response:
    """OpenAI-shaped JSON for ``err`` (a worker's own error status and body pass through unchanged)."""
    if isinstance(err, UpstreamStatusError):
        headers = {ERROR_CODE_HEADER: f"upstream_{err.upstream_status}"}
        return Response(
            err.body, status_code=err.upstream_status, media_type=err.content_type, headers=headers
        )
    headers = {ERROR_CODE_HEADER: err.code, **err.headers()}
    return Response(
        orjson.dumps(error_payload(err)),
        status_code=err.status,
        media_type="application/json",
        headers=headers,
    )


def _from_http_exception(exc: HTTPException, path: str) -> SmgError:
    if exc.status_code == 404:
        return UnknownUrl(f"unknown URL: {path}")
    if exc.status_code == 405:
        return MethodNotAllowed(f"method not allowed on {path}")
    return InvalidRequest(str(exc.detail))


def install_error_handlers(app: FastAPI) -> None:
    async def on_smg_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SmgError)
        return error_response(exc)

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(_from_http_exception(exc, request.url.path))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(InvalidJson("request body is not valid JSON"))
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error_response(
            InvalidRequest(f"invalid request: {first.get('msg', 'bad input')}", param=param)
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(SmgError("internal error"))

    app.add_exception_handler(SmgError, on_smg_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
