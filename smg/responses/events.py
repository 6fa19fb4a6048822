"""OpenAI's Responses event stream (``stream: true``): numbered events as server-sent events.

`EventStream` numbers every event it writes (``sequence_number`` from 0, strictly increasing) and
hands out output indexes in the order items are added. A whole item (one known before it is
announced: ``mcp_list_tools``, an approved ``mcp_call``, the client's ``function_call``, an
``mcp_approval_request``) is written by `EventStream.item` as ``response.output_item.added`` (the item
as it starts), its own events, ``response.output_item.done``:

- ``function_call``: ``function_call_arguments.delta`` (the whole arguments) and ``.done``;
- ``mcp_list_tools``: ``mcp_list_tools.in_progress``, then ``.completed`` (``.failed`` for an item
  with an ``error``);
- ``mcp_call``: ``mcp_call_arguments.delta`` and ``.done``, ``mcp_call.in_progress``, then
  ``mcp_call.completed`` or ``mcp_call.failed``;
- ``mcp_approval_request``: none (``output_item.added`` already shows it whole, as OpenAI sends it).

Items produced while the model writes (a ``message``, an ``mcp_call`` that runs while the client
watches) are written piece by piece by `smg.responses.live` with the same events.
"""

from __future__ import annotations

from typing import Any

import orjson

from smg.errors import SmgError


def started(item: dict[str, Any]) -> dict[str, Any]:
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


class EventStream:
    """The numbered events of one response stream, each written as ``event:`` and ``data:`` lines.
    Events are numbered as they are made and kept until `take`, so every event made is sent, in order,
    even when the step that made it fails before it returns."""

    def __init__(self) -> None:
        self._number = 0
        self._indexes = 0
        self._made: list[bytes] = []

    def take(self) -> bytes:
        """The events made since the last `take`."""
        out, self._made = b"".join(self._made), []
        return out

    def event(self, kind: str, **fields: Any) -> None:
        """One event of type ``kind``, numbered."""
        event = {"type": kind, **fields, "sequence_number": self._number}
        self._number += 1
        self._made.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")

    def added(self, item: dict[str, Any]) -> int:
        """``response.output_item.added`` of ``item`` (already in its started shape) at the next output
        index, which it returns."""
        index = self._indexes
        self._indexes += 1
        self.event("response.output_item.added", output_index=index, item=item)
        return index

    def item(self, item: dict[str, Any]) -> None:
        """Every event of a whole item, at the next output index."""
        index = self.added(started(item))
        ref = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "function_call":
            self.event("response.function_call_arguments.delta", **ref, delta=item["arguments"])
            self.event("response.function_call_arguments.done", **ref, arguments=item["arguments"])
        elif kind == "mcp_list_tools":
            self.event("response.mcp_list_tools.in_progress", **ref)
            ended = "failed" if item.get("error") else "completed"
            self.event(f"response.mcp_list_tools.{ended}", **ref)
        elif kind == "mcp_call":
            self.call_started(item, index)
            self.call_ended(item, index)
            return
        self.event("response.output_item.done", output_index=index, item=item)

    def call_started(self, item: dict[str, Any], index: int) -> None:
        """The events of an ``mcp_call`` about to run: its arguments, then ``mcp_call.in_progress``."""
        ref = {"item_id": item["id"], "output_index": index}
        self.event("response.mcp_call_arguments.delta", **ref, delta=item["arguments"])
        self.event("response.mcp_call_arguments.done", **ref, arguments=item["arguments"])
        self.event("response.mcp_call.in_progress", **ref)

    def call_ended(self, item: dict[str, Any], index: int) -> None:
        """The events of an ``mcp_call`` that ran: ``mcp_call.completed`` or ``.failed``, then
        ``output_item.done`` with the whole item."""
        ended = "completed" if item["status"] == "completed" else "failed"
        self.event(f"response.mcp_call.{ended}", item_id=item["id"], output_index=index)
        self.event("response.output_item.done", output_index=index, item=item)

    def error(self, exc: SmgError) -> None:
        """OpenAI's ``error`` event (``ResponseErrorEvent``): what broke the stream."""
        self.event("error", code=exc.code, message=exc.message, param=exc.param)
