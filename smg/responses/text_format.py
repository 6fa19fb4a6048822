"""``text.format`` of a Responses request: validated, echoed on the response, and sent to the worker as
chat's ``response_format`` on every model round.

OpenAI's three formats are served: ``{"type": "text"}``, ``{"type": "json_object"}`` and
``{"type": "json_schema", "name": ..., "schema": {...}, "strict": bool, "description": ...}``; the last
becomes ``{"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}`` (the keys
given). The worker does the constraining; the gateway only carries the format. ``text.verbosity`` is a
hint no chat worker takes, so one that asks for something is refused rather than ignored.
"""

from __future__ import annotations

import re
from typing import Any

from smg.errors import InvalidRequest

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SCHEMA_KEYS = frozenset({"type", "name", "schema", "strict", "description"})
TEXT = {"type": "text"}


def _check(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(message, param=param)


def parse_text(raw: Any) -> dict[str, Any] | None:
    """The format of a request's ``text`` field, validated (None when ``text`` or its ``format`` is
    absent or null: plain text). Raises InvalidRequest whose ``param`` names the key at fault
    (``text``, ``text.verbosity``, ``text.format``, ``text.format.name``...)."""
    if raw is None:
        return None
    _check(isinstance(raw, dict), "'text' must be an object", "text")
    for key in raw:
        _check(
            key in ("format", "verbosity"), f"unknown or unsupported parameter: 'text.{key}'", f"text.{key}"
        )
    _check(raw.get("verbosity") is None, "'text.verbosity' is not supported", "text.verbosity")
    fmt = raw.get("format")
    if fmt is None:
        return None
    _check(isinstance(fmt, dict), "'text.format' must be an object", "text.format")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        for key in fmt:
            _check(
                key == "type",
                f"'text.format.{key}' is not a field of the {kind!r} format",
                f"text.format.{key}",
            )
        return {"type": kind}
    _check(
        kind == "json_schema",
        "'text.format.type' must be 'text', 'json_object' or 'json_schema'",
        "text.format.type",
    )
    for key in fmt:
        _check(key in _SCHEMA_KEYS, f"unknown parameter: 'text.format.{key}'", f"text.format.{key}")
    name = fmt.get("name")
    _check(
        isinstance(name, str) and _NAME.fullmatch(name) is not None,
        "'text.format.name' is required: 1 to 64 of a-z, A-Z, 0-9, '_' and '-'",
        "text.format.name",
    )
    _check(
        isinstance(fmt.get("schema"), dict),
        "'text.format.schema' must be a JSON Schema object",
        "text.format.schema",
    )
    strict, description = fmt.get("strict"), fmt.get("description")
    _check(
        strict is None or isinstance(strict, bool),
        "'text.format.strict' must be a boolean",
        "text.format.strict",
    )
    _check(
        description is None or isinstance(description, str),
        "'text.format.description' must be a string",
        "text.format.description",
    )
    return {k: v for k, v in fmt.items() if v is not None}


def response_format(fmt: dict[str, Any] | None) -> dict[str, Any]:
    """The chat body's part for ``fmt``: ``{"response_format": ...}``, or nothing for no format."""
    if fmt is None:
        return {}
    if fmt["type"] != "json_schema":
        return {"response_format": {"type": fmt["type"]}}
    inner = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    return {"response_format": {"type": "json_schema", "json_schema": inner}}


def echoed(fmt: dict[str, Any] | None) -> dict[str, Any]:
    """The response's ``text`` field, as OpenAI echoes it: the format (``{"type": "text"}`` by default;
    a ``json_schema`` one with ``description`` and ``strict`` always present, null and false when not
    given)."""
    if fmt is None:
        return {"format": dict(TEXT)}
    if fmt["type"] == "json_schema":
        return {"format": {"description": None, "strict": False} | fmt}
    return {"format": dict(fmt)}
