"""Chat request parsing and SSE error framing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from smg.errors import InvalidJson, InvalidRequest, ModelNotFound
from smg.protocol import parse_chat_request, sse_error_event

MESSAGES = [{"role": "user", "content": "hi"}]


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {"model": "m", "messages": MESSAGES}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not _MISSING})


_MISSING: Any = object()


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"\xff\xfe", b'{"model": "m", "messages": [', b"", b'{"model": "m",}'],
    ids=["not-json", "not-utf8", "truncated", "empty", "trailing-comma"],
)
def test_a_body_that_is_not_json_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJson) as info:
        parse_chat_request(raw, headers={})

    assert info.value.code == "invalid_json"
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"[]", "body"),
        (b'"text"', "body"),
        (b"null", "body"),
        (body(model=_MISSING), "model"),
        (body(model=3), "model"),
        (body(model=""), "model"),
        (body(model=None), "model"),
        (body(messages=_MISSING), "messages"),
        (body(messages=[]), "messages"),
        (body(messages="hi"), "messages"),
        (body(messages={"role": "user"}), "messages"),
        (body(messages=[{"content": "hi"}]), "messages[0]"),
        (body(messages=[{"role": 1, "content": "hi"}]), "messages[0]"),
        (body(messages=[*MESSAGES, "hi"]), "messages[1]"),
        (body(stream="yes"), "stream"),
        (body(stream=1), "stream"),
        (body(stream_options="x"), "stream_options"),
        (body(stream_options=[]), "stream_options"),
        (body(tools={}), "tools"),
        (body(tools="x"), "tools"),
        (body(tools=[{"function": {"name": "f"}}]), "tools[0]"),
        (body(tools=[{"type": "function"}, 5]), "tools[1]"),
    ],
    ids=lambda v: v.decode()[:60] if isinstance(v, bytes) else v,
)
def test_a_malformed_request_is_invalid_request_naming_the_param(raw: bytes, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw, headers={})

    assert type(info.value) is InvalidRequest
    assert info.value.code == "invalid_request"
    assert info.value.param == param


def test_a_valid_body_is_kept_byte_for_byte_with_unknown_fields() -> None:
    raw = (
        b'{"model":"m",  "messages":[{"role":"user","content":"hi"}],"temperature":0.3,"x_vendor":{"a":[1]}}'
    )

    req = parse_chat_request(raw, headers={"x-request-id": "r1"})

    assert req.raw == raw
    assert req.model == "m"
    assert req.stream is False
    assert req.body["temperature"] == 0.3
    assert req.body["x_vendor"] == {"a": [1]}
    assert req.headers == {"x-request-id": "r1"}


@pytest.mark.parametrize(("stream", "expected"), [(True, True), (False, False), (None, False)])
def test_stream_is_read_as_a_boolean(stream: bool | None, expected: bool) -> None:
    req = parse_chat_request(body(stream=stream, stream_options={"include_usage": True}), headers={})

    assert req.stream is expected


def test_empty_tools_and_well_formed_tools_are_accepted() -> None:
    parse_chat_request(body(tools=[]), headers={})
    parse_chat_request(body(tools=[{"type": "function", "function": {"name": "f"}}]), headers={})


def test_affinity_key_is_the_start_of_the_first_message() -> None:
    long_text = "x" * 2000
    req = parse_chat_request(body(messages=[{"role": "system", "content": long_text}]), headers={})

    assert req.affinity_key == b"x" * 512


def test_sse_error_event_is_one_data_event_with_the_openai_error_shape() -> None:
    event = sse_error_event(ModelNotFound("gpt-x"))

    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n") == 2
    payload = orjson.loads(event[len(b"data: ") : -2])
    assert payload == {
        "error": {
            "message": payload["error"]["message"],
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert isinstance(payload["error"]["message"], str)
    assert payload["error"]["message"]
