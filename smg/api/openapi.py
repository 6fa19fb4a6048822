"""The OpenAPI document says what the gateway answers: every operation's errors are OpenAI-shaped
(``{"error": {message, type, param, code}}``), never FastAPI's 422 validation shape (the one error
handler turns validation failures into 400 ``invalid_request``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR_RESPONSE = {
    "description": "An OpenAI-shaped error; its code is also in the X-SMG-Error-Code header",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with FastAPI's 422 responses replaced by the gateway's error shape."""
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["default"] = _ERROR_RESPONSE
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ONLY:
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    return doc


def install(app: FastAPI) -> None:
    """Serve `document` (built once, on first use) at the app's ``openapi_url``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
