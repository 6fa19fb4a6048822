"""A finished response as OpenAI's Responses event stream (``stream: true``).

The events are produced from the finished response, so the stream is sent once the loop has ended (no
token-by-token deltas yet); its sequence is OpenAI's: ``response.created``, ``response.in_progress``,
then per output item ``response.output_item.added``, its own events, ``response.output_item.done``, and
last ``response.completed`` (or ``response.incomplete``) with the whole response. ``sequence_number``
counts from 0. Per item:

- ``message``: ``content_part.added``, ``output_text.delta`` (the whole text), ``output_text.done``,
  ``content_part.done``;
- ``function_call``: ``function_call_arguments.delta`` and ``.done``;
- ``mcp_list_tools``: ``mcp_list_tools.in_progress``, ``.completed``;
- ``mcp_call``: ``mcp_call_arguments.delta`` and ``.done``, ``mcp_call.in_progress``, then
  ``mcp_call.completed`` or ``mcp_call.failed``;
- ``mcp_approval_request``: none (``output_item.added`` already shows it whole, as OpenAI sends it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson


def _started(item: dict[str, Any]) -> dict[str, Any]:
    """The item as ``output_item.added`` shows it: nothing produced yet."""
    kind = item["type"]
    if kind == "message":
        return item | {"status": "in_progress", "content": []}
    if kind == "function_call":
        return item | {"status": "in_progress", "arguments": ""}
    if kind == "mcp_call":
        return item | {"status": "in_progress", "arguments": "", "output": None, "error": None}
    if kind == "mcp_list_tools":
        return item | {"tools": []}
    return item


def _item_events(item: dict[str, Any], index: int) -> Iterator[dict[str, Any]]:
    ref = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    if kind == "message":
        for c, part in enumerate(item["content"]):
            at = ref | {"content_index": c}
            yield at | {"type": "response.content_part.added", "part": part | {"text": ""}}
            yield at | {"type": "response.output_text.delta", "delta": part["text"], "logprobs": []}
            yield at | {"type": "response.output_text.done", "text": part["text"], "logprobs": []}
            yield at | {"type": "response.content_part.done", "part": part}
    elif kind == "function_call":
        yield ref | {"type": "response.function_call_arguments.delta", "delta": item["arguments"]}
        yield ref | {"type": "response.function_call_arguments.done", "arguments": item["arguments"]}
    elif kind == "mcp_list_tools":
        yield ref | {"type": "response.mcp_list_tools.in_progress"}
        yield ref | {"type": "response.mcp_list_tools.completed"}
    elif kind == "mcp_call":
        yield ref | {"type": "response.mcp_call_arguments.delta", "delta": item["arguments"]}
        yield ref | {"type": "response.mcp_call_arguments.done", "arguments": item["arguments"]}
        yield ref | {"type": "response.mcp_call.in_progress"}
        ended = "completed" if item["status"] == "completed" else "failed"
        yield ref | {"type": f"response.mcp_call.{ended}"}


def response_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event of ``response``'s stream, in order, numbered."""
    opening = response | {"status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
    ]
    for index, item in enumerate(response["output"]):
        events.append({"type": "response.output_item.added", "output_index": index, "item": _started(item)})
        events += _item_events(item, index)
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events.append({"type": final, "response": response})
    return [event | {"sequence_number": n} for n, event in enumerate(events)]


def sse(events: list[dict[str, Any]]) -> bytes:
    """The events as one server-sent-events body (``event:`` and ``data:`` lines, as OpenAI sends)."""
    return b"".join(
        b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n" for event in events
    )
