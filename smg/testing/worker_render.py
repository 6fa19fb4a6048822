"""Wire encoding of the scripted worker's replies: chat.completion bodies, SSE events, errors.

Stream layout (every event is ``data: <json>\\n\\n``, all chunks share one id/created):
role chunk, then one chunk per word of the content (words keep their trailing whitespace, so the deltas
concatenate to the non-stream content) or, for tool calls, per call a header delta (index, id, type,
name, ``arguments: ""``) followed by the arguments in 2-3 fragments; then an empty delta with the
finish_reason; then, only when usage was asked for, a ``"choices": []`` chunk with usage; then
``data: [DONE]``. The role chunk's content is ``""`` for text replies and ``null`` for tool calls.
"""

from __future__ import annotations

from typing import Any

import orjson

from smg.testing.worker_script import Reply, ToolCall, split_words

__all__ = ["DONE_EVENT", "completion_body", "error_body", "pieces", "stream_events"]

DONE_EVENT = b"data: [DONE]\n\n"


def completion_body(reply: Reply, *, completion_id: str, created: int, model: str) -> bytes:
    """Encode `reply` as a non-stream ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [_call_json(call) for call in reply.tool_calls]
    return orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
            ],
            "usage": _usage(reply),
        }
    )


def stream_events(
    reply: Reply, *, completion_id: str, created: int, model: str, include_usage: bool
) -> list[bytes]:
    """Encode `reply` as the complete list of SSE events, ``[DONE]`` last."""
    head = orjson.dumps(
        {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    )[:-1]
    prefix = b"data: " + head + b',"choices":[{"index":0,"delta":'

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return (
            prefix
            + orjson.dumps(delta)
            + b',"logprobs":null,"finish_reason":'
            + orjson.dumps(finish_reason)
            + b"}]}\n\n"
        )

    events = [chunk({"role": "assistant", "content": "" if reply.content is not None else None})]
    if reply.content is not None:
        events += [chunk({"content": word}) for word in split_words(reply.content)]
    for index, call in enumerate(reply.tool_calls):
        header = _call_json(call) | {"index": index}
        header["function"] = {"name": call.name, "arguments": ""}
        events.append(chunk({"tool_calls": [header]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            for fragment in _fragments(call.arguments)
        ]
    events.append(chunk({}, reply.finish_reason))
    if include_usage:
        events.append(b"data: " + head + b',"choices":[],"usage":' + orjson.dumps(_usage(reply)) + b"}\n\n")
    events.append(DONE_EVENT)
    return events


def error_body(message: str, *, status: int, param: str | None = None, code: str | None = None) -> bytes:
    """Encode an OpenAI-shaped error; `type` is ``server_error`` for 5xx, else ``invalid_request_error``."""
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}})


def _call_json(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _fragments(text: str) -> list[str]:
    if len(text) < 2:
        return [text] if text else []
    step = -(-len(text) // (3 if len(text) >= 3 else 2))
    return [text[i : i + step] for i in range(0, len(text), step)]


_PIECE = 64 * 1024


def pieces(events: list[bytes]) -> list[bytes]:
    """The events joined into writes of about 64 KiB: few writes (one per event would make the worker
    several times slower), yet a long stream is not handed to the socket in one block."""
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for event in events:
        batch.append(event)
        size += len(event)
        if size >= _PIECE:
            out.append(b"".join(batch))
            batch, size = [], 0
    if batch:
        out.append(b"".join(batch))
    return out
