"""A response written as its loop runs: the Responses API's `LoopWriter` (`smg.routing.stream_writer`).

The chat streaming loop (`smg.routing.stream_loop`) reads each model round from the worker and calls
this writer at each step; it answers with OpenAI's Responses events (`smg.responses.events`) and keeps
the output items, in order, with the ids it announced them by, so the final response is the one the
events built:

- the items known before the first round (`Prepared.output`: ``mcp_list_tools``, approved
  ``mcp_call``s) right after ``response.created`` and ``response.in_progress``;
- a round's text as it arrives: at its first delta a ``message`` item is added (with
  ``content_part.added``), then one ``output_text.delta`` per worker delta; the message is done when
  its round ends;
- a round whose calls the gateway runs: per call of an offered MCP tool an ``mcp_call`` item is added
  with its arguments and ``mcp_call.in_progress`` before the calls start, and ``mcp_call.completed`` or
  ``.failed`` and ``output_item.done`` once they all ran (a call's arguments come whole: a round's calls
  are only known to run once the round ends);
- the reply that ends the loop: its message done, then the client's ``function_call`` items and the
  ``mcp_approval_request`` items, whole (`smg.responses.output.final_items`).

The terminal event (``response.completed`` / ``.incomplete``, or ``response.failed`` and ``error``) is
the caller's (`smg.responses.stream`): it comes once the response is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from smg.errors import SmgError
from smg.responses.events import EventStream, started
from smg.responses.items import mcp_call_id, new_id, new_round_key
from smg.responses.output import final_items, mcp_call_item, message_item, response_object
from smg.responses.prepare import Prepared
from smg.responses.request import ResponsesRequest
from smg.routing.accumulator import AccumulatedCall
from smg.routing.budgets import CallRecord, LoopBudgets, LoopLedger, StopReason
from smg.routing.loop import LoopResult
from smg.routing.metering import Generation


class LiveResponse:
    """One response's events and output items as its loop runs. After the loop, ``result`` is what it
    ended with (as `ToolLoop.run` returns it), or ``error`` what broke it."""

    def __init__(
        self,
        request: ResponsesRequest,
        ready: Prepared,
        *,
        response_id: str,
        created_at: int,
        report: Generation,
        clock: Callable[[], float],
    ) -> None:
        self.response_id = response_id
        self.created_at = created_at
        self.events = EventStream()
        self.output: list[dict[str, Any]] = []
        self.result: LoopResult | None = None
        self.error: SmgError | None = None
        self._request = request
        self._ready = ready
        self._report = report
        self._clock = clock
        self._message: tuple[str, int] | None = None  # the open message's id and output index
        self._text: list[str] = []  # its deltas, joined once
        self._running: dict[int, tuple[str, int]] = {}  # call position -> item id, output index

    def shell(self, **fields: Any) -> dict[str, Any]:
        """The response object without what its loop decides (no ``smg`` extension), with ``fields``."""
        nothing = LoopResult(
            {"choices": [{}]}, "completed", LoopLedger(LoopBudgets(), time.monotonic), [], ""
        )
        base = response_object(
            self._request, nothing, [], response_id=self.response_id, created_at=self.created_at
        )
        del base["smg"]
        return base | {"usage": None, "incomplete_details": None} | fields

    def opening(self) -> bytes:
        """``response.created``, ``response.in_progress``, then the items known before the first round."""
        opening = self.shell(status="in_progress")
        self.events.event("response.created", response=opening)
        self.events.event("response.in_progress", response=opening)
        for item in self._ready.output:
            self.events.item(item)
            self.output.append(item)
        return self.events.take()

    def seen(self, chunk: dict[str, Any]) -> None:
        if self._report.response_id is None:
            self._report.response_id = chunk.get("id") or None
            self._report.response_model = chunk.get("model") or self._request.model

    def started(self) -> bytes:
        return b""

    def content(self, text: str) -> bytes:
        if self._message is None:
            item_id = new_id("msg")
            index = self.events.added(started(message_item("") | {"id": item_id}))
            part = {"type": "output_text", "text": "", "annotations": []}
            ref = {"item_id": item_id, "output_index": index, "content_index": 0}
            self.events.event("response.content_part.added", **ref, part=part)
            self._message, self._text = (item_id, index), []
        else:
            item_id, index = self._message
        if self._report.first_token is None:
            self._report.first_token = self._clock()
        self._text.append(text)
        ref = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.events.event("response.output_text.delta", **ref, delta=text, logprobs=[])
        return self.events.take()

    def _close_message(self) -> None:
        if self._message is None:
            return
        (item_id, index), self._message = self._message, None
        item = message_item("".join(self._text)) | {"id": item_id}
        part = item["content"][0]
        ref = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.events.event("response.output_text.done", **ref, text=part["text"], logprobs=[])
        self.events.event("response.content_part.done", **ref, part=part)
        self.events.event("response.output_item.done", output_index=index, item=item)
        self.output.append(item)

    def executing(self, iteration: int, calls: Sequence[AccumulatedCall]) -> bytes:
        self._close_message()
        round_key = new_round_key()
        for position, call in enumerate(calls):
            info = self._ready.plan.tools.get(call.name)
            if info is None:  # a name nobody declared: answered to the model, no item
                continue
            item = mcp_call_item(call, {}, "ok", info, item_id=mcp_call_id(round_key))
            index = self.events.added(started(item))
            self.events.call_started(item, index)
            self._running[position] = (item["id"], index)
        return self.events.take()

    def executed(
        self,
        assistant: dict[str, Any],
        calls: Sequence[AccumulatedCall],
        tool_messages: Sequence[dict[str, Any]],
        records: Sequence[CallRecord],
    ) -> bytes:
        running, self._running = self._running, {}
        for position, (call, message, record) in enumerate(zip(calls, tool_messages, records, strict=True)):
            if position in running:
                item_id, index = running[position]
                info = self._ready.plan.tools[call.name]
                item = mcp_call_item(call, message, record.status, info, item_id=item_id)
                self.events.call_ended(item, index)
                self.output.append(item)
        return self.events.take()

    def finished(
        self,
        reason: StopReason,
        client: Sequence[AccumulatedCall],
        finish_reason: str | None,
        ledger: LoopLedger,
    ) -> bytes:
        text = "".join(self._text) if self._message is not None else None
        self._close_message()
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if client:
            message["tool_calls"] = [c.as_message_call() for c in client]
        reply: dict[str, Any] = {
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]
        }
        if ledger.usage is not None:
            reply["usage"] = ledger.usage
        result = LoopResult(reply, reason, ledger, [], self._report.worker or "")
        items = final_items(result, self._ready.plan, self._ready.gated)
        if text:  # its message is out already
            items = items[1:]
        if items and self._report.first_token is None:
            self._report.first_token = self._clock()
        for item in items:
            self.events.item(item)
            self.output.append(item)
        self.result = result
        return self.events.take()

    def failed(self, exc: SmgError) -> bytes:
        self.error = exc
        return b""
