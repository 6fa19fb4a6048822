"""SSE decoding and tool-call delta accumulation."""

from __future__ import annotations

import orjson
import pytest

from smg.routing.accumulator import AccumulatedCall, SseDecoder, SseEventTooLarge, ToolCallAccumulator


def test_fragments_of_one_call_are_joined_by_index() -> None:
    acc = ToolCallAccumulator()
    acc.feed([{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}])
    acc.feed([{"index": 0, "function": {"arguments": '{"a"'}}])
    acc.feed([{"index": 0, "function": {"arguments": ": 1}"}}])
    assert acc.calls() == [AccumulatedCall(0, "c1", "f", '{"a": 1}')]


def test_interleaved_calls_with_several_indices() -> None:
    acc = ToolCallAccumulator()
    acc.feed([{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}])
    acc.feed([{"index": 0, "id": "a", "function": {"name": "f", "arguments": "["}}])
    acc.feed([{"index": 1, "function": {"arguments": "}"}}, {"index": 0, "function": {"arguments": "]"}}])
    assert acc.calls() == [AccumulatedCall(0, "a", "f", "[]"), AccumulatedCall(1, "b", "g", "{}")]


def test_fragments_without_index_continue_the_last_call_unless_a_new_id_starts() -> None:
    acc = ToolCallAccumulator()
    acc.feed([{"id": "a", "function": {"name": "f", "arguments": "{"}}])
    acc.feed([{"function": {"arguments": "}"}}])
    acc.feed([{"id": "b", "function": {"name": "g", "arguments": "{}"}}])
    assert [(c.id, c.arguments) for c in acc.calls()] == [("a", "{}"), ("b", "{}")]


def test_decoder_yields_whole_events_from_bytes_split_anywhere() -> None:
    events = [
        {"choices": [{"delta": {"content": "Hi "}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}}]},
        {"choices": [{"delta": {"content": "there"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]},
    ]
    wire = b": keep-alive\r\n\r\n" + b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)
    wire += b"data: [DONE]\n\n"
    decoder = SseDecoder()
    payloads = [p for i in range(len(wire)) for p in decoder.feed(wire[i : i + 1])]
    assert not decoder.pending
    assert payloads[-1] == "[DONE]"
    acc = ToolCallAccumulator()
    content = ""
    for payload in payloads[:-1]:
        delta = orjson.loads(payload)["choices"][0]["delta"]
        content += delta.get("content", "")
        acc.feed(delta.get("tool_calls", []))
    assert content == "Hi there"
    assert acc.calls() == [AccumulatedCall(0, "c", "f", "{}")]


def test_multi_line_data_is_joined() -> None:
    assert SseDecoder().feed(b"data: a\ndata: b\n\n") == ["a\nb"]


def test_an_event_that_never_ends_is_refused_past_the_bound_and_the_buffer_is_dropped() -> None:
    decoder = SseDecoder(max_event_bytes=1024)
    assert decoder.feed(b"data: " + b"x" * 1000) == []
    with pytest.raises(SseEventTooLarge):
        decoder.feed(b"x" * 100)
    assert not decoder.pending
    assert decoder.feed(b"data: ok\n\n") == ["ok"]
