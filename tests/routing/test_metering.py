"""StreamMeter and the usage request of pass-through streams: bytes relayed as they came, timing, usage."""

from __future__ import annotations

import orjson
import pytest

from smg.protocol import parse_chat_request
from smg.routing.metering import StreamMeter, completion_tokens, stream_body


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


ROLE = _event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
WORDS = [_event({"choices": [{"index": 0, "delta": {"content": w}}]}) for w in ("a ", "b ", "c")]
FINISH = _event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
USAGE = _event({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}})
DONE = b"data: [DONE]\n\n"
STREAM = ROLE + b"".join(WORDS) + FINISH + USAGE + DONE


def _relay(meter: StreamMeter, data: bytes, size: int) -> bytes:
    out = b"".join(meter.feed(data[i : i + size], float(i)) for i in range(0, len(data), size))
    return out + meter.flush()


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_a_stream_is_relayed_unchanged_when_the_client_asked_for_usage(size: int) -> None:
    meter = StreamMeter(strip_usage=False)
    assert _relay(meter, STREAM, size) == STREAM
    assert meter.tokens == (4, 3)


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_only_the_usage_chunk_is_dropped_when_the_gateway_asked_for_it(size: int) -> None:
    meter = StreamMeter(strip_usage=True)
    assert _relay(meter, STREAM, size) == STREAM.replace(USAGE, b"")
    assert meter.tokens == (4, 3)


def test_first_token_skips_the_empty_role_chunk_and_tpot_spreads_over_later_tokens() -> None:
    meter = StreamMeter(strip_usage=False)
    for now, event in enumerate([ROLE, *WORDS, FINISH, USAGE, DONE]):
        meter.feed(event, float(now))
    assert (meter.first_token, meter.last_token) == (1.0, 3.0)
    assert meter.tpot() == 1.0


def test_crlf_framed_events_are_recognised() -> None:
    meter = StreamMeter(strip_usage=True)
    crlf = STREAM.replace(b"\n\n", b"\r\n\r\n")
    assert _relay(meter, crlf, 5) == crlf.replace(USAGE.replace(b"\n\n", b"\r\n\r\n"), b"")
    assert meter.tokens == (4, 3)


@pytest.mark.parametrize(
    ("raw", "injected"),
    [
        (b'{"model":"m","stream":true,"messages":[{"role":"user"}]}  \n', True),
        (b'{"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user"}]}', True),
        (b'{"model":"m","stream":true,"stream_options":{"x":1},"messages":[{"role":"user"}]}', True),
        (
            b'{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"u"}]}',
            False,
        ),
    ],
)
def test_usage_is_requested_unless_the_client_did(raw: bytes, injected: bool) -> None:
    request = parse_chat_request(raw, headers={})
    body, added = stream_body(request)
    assert added is injected
    sent = orjson.loads(body)
    assert sent["stream_options"]["include_usage"] is True
    assert {k: v for k, v in sent.items() if k != "stream_options"} == {
        k: v for k, v in request.body.items() if k != "stream_options"
    }
    if not injected:
        assert body == raw


def test_completion_tokens_read_only_a_well_formed_usage() -> None:
    assert completion_tokens(b'{"usage":{"prompt_tokens":2,"completion_tokens":5}}') == (2, 5)
    assert completion_tokens(b'{"usage":{"prompt_tokens":true,"completion_tokens":5}}') is None
    assert completion_tokens(b"not json") is None
    assert completion_tokens(b"[]") is None
