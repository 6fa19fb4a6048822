"""What the streaming tool loop writes: the client's chunks, its progress comments, the upstream body.

Every client chunk carries one head (id, ``object``, created, model), taken from the first upstream chunk
(or made up when a chunk must be sent before any arrived). `ClientChunks` also notes, in the loop's
`Generation` record, the response id and model and when the first token left for the client.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from smg.routing.accumulator import AccumulatedCall
from smg.routing.budgets import CallRecord
from smg.routing.metering import Generation

_UNSAFE_IN_COMMENT = re.compile(r"\s")


def upstream_stream_body(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` for a streamed model call: stream on, usage always requested (it is summed)."""
    options = body.get("stream_options")
    merged = (options if isinstance(options, dict) else {}) | {"include_usage": True}
    return body | {"stream": True, "stream_options": merged}


def progress_comment(record: CallRecord) -> bytes:
    """The SSE comment line announcing one finished tool call (whitespace in names becomes ``_``)."""
    server = _UNSAFE_IN_COMMENT.sub("_", record.server) or "-"
    tool = _UNSAFE_IN_COMMENT.sub("_", record.tool)
    return (
        f": smg tool_call server={server} tool={tool} status={record.status} "
        f"duration_ms={record.duration_ms} iteration={record.iteration}\n\n"
    ).encode()


def client_deltas(calls: list[AccumulatedCall]) -> list[dict[str, Any]]:
    """The ``delta.tool_calls`` of the client's own calls, re-indexed from 0."""
    return [{"index": i, **call.as_message_call()} for i, call in enumerate(calls)]


class ClientChunks:
    """Builds the ``data:`` events of one client stream (one role chunk, then deltas); the time the first
    token left is read from ``clock``."""

    def __init__(self, model: str, report: Generation, clock: Callable[[], float]) -> None:
        self._model = model
        self._report = report
        self._clock = clock
        self._head: bytes | None = None
        self._role_sent = False
        self.content_sent = False

    def seen(self, chunk: dict[str, Any]) -> None:
        """Take the head from ``chunk`` when it is the first upstream chunk."""
        if self._head is not None:
            return
        completion_id = chunk.get("id") or f"chatcmpl-smg-{uuid.uuid4().hex}"
        model = chunk.get("model") or self._model
        self._report.response_id, self._report.response_model = completion_id, model
        self._head = self._make_head(completion_id, chunk.get("created"), model)

    def role(self) -> bytes:
        """The role chunk the first time, then nothing."""
        if self._role_sent:
            return b""
        self._role_sent = True
        return self.chunk({"role": "assistant", "content": ""})

    def tokens(self, delta: dict[str, Any]) -> bytes:
        """A chunk carrying tokens for the client; the first one is the request's time to first token."""
        if self._report.first_token is None:
            self._report.first_token = self._clock()
        if delta.get("content"):
            self.content_sent = True
        return self.chunk(delta)

    def chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, extra: dict[str, Any] | None = None
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self.event({"choices": [choice]} | (extra or {}))

    def event(self, fields: dict[str, Any]) -> bytes:
        if self._head is None:
            self._head = self._make_head(f"chatcmpl-smg-{uuid.uuid4().hex}", None, self._model)
        return b"data: " + self._head + b"," + orjson.dumps(fields)[1:] + b"\n\n"

    @staticmethod
    def _make_head(completion_id: str, created: Any, model: str) -> bytes:
        head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created or int(time.time()),
            "model": model,
        }
        return orjson.dumps(head)[:-1]
