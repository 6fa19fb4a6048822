"""Token accounting: usage of a completion body, TTFT/TPOT/usage of a pass-through stream, the
`Generation` record both paths (pass-through and tool loop) fill in for the router metrics and the route
span, and the usage of one model call of the tool loop on its iteration span.

Nothing the client sees is re-serialised. A stream request whose client did not ask for usage gets
``stream_options.include_usage`` added on the way to the worker (spliced into the raw bytes when the body
has no ``stream_options`` at all, re-encoded only when it has one without ``include_usage``); the
worker's ``"choices": []`` usage chunk is then dropped from what the client receives. Every other byte is
relayed as it came, only cut at event boundaries while a chunk may need dropping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from smg.protocol import ChatRequest, PassThroughRequest
from smg.spans import TraceSpan

if TYPE_CHECKING:
    from smg.routing.recent_loops import LoopTrace

Tokens = tuple[int, int]
"""(input, output) token counts: ``usage.prompt_tokens`` and ``usage.completion_tokens``."""

_INCLUDE_USAGE = b',"stream_options":{"include_usage":true}}'
_BOUNDARY = re.compile(rb"\r?\n\r?\n")
_MAX_PENDING = 1 << 20  # an "event" longer than this is not SSE: stop cutting and scanning it


@dataclass
class Generation:
    """What one routed request produced, filled in as it becomes known (for a stream: while relayed).

    ``first_token`` is the ``time.perf_counter()`` at which the first token left for the client;
    ``tokens`` are summed over every model call; ``tpot`` comes from the last model call's stream.
    ``iterations`` and ``stop_reason`` are the tool loop's (0 and None on the pass-through path);
    ``error`` is the error code a stream ended with after its first byte. ``loop``: the request's
    entry of the recent tool loops, when it runs a loop and the ring is on.
    """

    first_token: float | None = None
    tpot: float | None = None
    tokens: Tokens | None = None
    response_id: str | None = None
    response_model: str | None = None
    worker: str | None = None
    iterations: int = 0
    stop_reason: str | None = None
    error: str | None = None
    loop: LoopTrace | None = None


def stream_body(request: ChatRequest | PassThroughRequest) -> tuple[bytes, bool]:
    """The body to send for a pass-through stream and whether the gateway added the usage request
    (then the usage chunk is the gateway's own and `StreamMeter` strips it)."""
    if "stream_options" not in request.body:
        # The parser admitted only a JSON object, so the raw body ends in "}" (and whitespace).
        return request.raw.rstrip()[:-1] + _INCLUDE_USAGE, True
    options = request.body["stream_options"] or {}
    if options.get("include_usage") is True:
        return request.raw, False
    return orjson.dumps(request.body | {"stream_options": options | {"include_usage": True}}), True


def completion_tokens(body: bytes) -> Tokens | None:
    """Token counts of a ``chat.completion`` body; None when it has no well-formed ``usage``."""
    return read_completion(body, Generation()).tokens


def read_completion(body: bytes, into: Generation) -> Generation:
    """``into`` with the usage, ``id`` and ``model`` of a ``chat.completion`` body (parsed once), as far
    as the body has them well-formed."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return into
    if isinstance(doc, dict):
        into.tokens = usage_tokens(doc.get("usage"))
        into.response_id = _text(doc.get("id"))
        into.response_model = _text(doc.get("model"))
    return into


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def per_token(first: float | None, last: float | None, output_tokens: int | None) -> float | None:
    """Seconds per output token after the first; None when unknown or with fewer than 2 tokens."""
    if first is None or last is None or output_tokens is None or output_tokens < 2:
        return None
    return (last - first) / (output_tokens - 1)


def usage_tokens(usage: Any) -> Tokens | None:
    """(input, output) of an OpenAI ``usage`` object; None when absent or ill-shaped."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if type(prompt) is int and type(completion) is int:
        return prompt, completion
    return None


def annotate_round(span: TraceSpan, *, usage: Any, response_model: Any) -> None:
    """The usage and response model of one model call on its iteration span (nothing when not recording)."""
    if not span.recording:
        return
    tokens = usage_tokens(usage)
    if tokens is not None:
        span.set("gen_ai.usage.input_tokens", tokens[0])
        span.set("gen_ai.usage.output_tokens", tokens[1])
    if isinstance(response_model, str) and response_model:
        span.set("gen_ai.response.model", response_model)


def _payload(event: bytes) -> Any:
    for line in event.splitlines():
        if line.startswith(b"data:"):
            try:
                return orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return None
    return None


def _has_token(doc: Any) -> bool:
    choices = doc.get("choices") if isinstance(doc, dict) else None
    if not isinstance(choices, list):
        return False
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and any(
            delta.get(key) for key in ("content", "reasoning_content", "tool_calls")
        ):
            return True
        if isinstance(choice, dict) and choice.get("text"):  # a text completion's chunk
            return True
    return False


class StreamMeter:
    """Watches one relayed SSE stream: when the first and last token events passed, and the usage.

    ``feed`` every upstream chunk and relay what it returns, then relay ``flush()``. Times come from the
    caller (``now``), so the meter itself never reads a clock. A token event is a chat chunk's
    ``content``, ``reasoning_content`` or ``tool_calls``, and with ``text_tokens`` also the ``text`` of a
    ``/v1/completions`` chunk.
    """

    def __init__(self, *, strip_usage: bool, text_tokens: bool = False) -> None:
        self._strip = strip_usage
        self._text = text_tokens
        self._pending = b""
        self.first_token: float | None = None
        self.last_token: float | None = None
        self.tokens: Tokens | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None

    def feed(self, chunk: bytes, now: float) -> bytes:
        """Scan ``chunk``; returns the bytes to relay (``chunk`` itself unless a usage chunk is stripped)."""
        data = self._pending + chunk if self._pending else chunk
        strip = self._strip
        start = 0
        kept: list[bytes] = []
        for match in _BOUNDARY.finditer(data):
            event = data[start : match.end()]
            start = match.end()
            if self._scan(event, now) or not strip:
                kept.append(event)
        self._pending = data[start:]
        if not strip:  # scanning only: the bytes go out exactly as they came
            if len(self._pending) > _MAX_PENDING:
                self._pending = b""
            return chunk
        if len(self._pending) > _MAX_PENDING:
            kept.append(self._pending)
            self._pending = b""
            self._strip = False
        return b"".join(kept)

    def flush(self) -> bytes:
        """What is still held back (an unterminated last event); empty unless stripping."""
        rest, self._pending = self._pending, b""
        return rest if self._strip else b""

    def _scan(self, event: bytes, now: float) -> bool:
        """Record what ``event`` says; False when it is a usage-only chunk (to strip)."""
        if b'"usage"' in event:
            doc = _payload(event)
            if isinstance(doc, dict):
                tokens = usage_tokens(doc.get("usage"))
                if tokens is not None:
                    self.tokens = tokens
                    if doc.get("choices") == []:
                        return False
        if self.first_token is None:
            doc = _payload(event)
            if _has_token(doc):
                self.first_token = self.last_token = now
                self.response_id, self.response_model = _text(doc.get("id")), _text(doc.get("model"))
        elif b'content"' in event or b'"tool_calls"' in event or (self._text and b'"text"' in event):
            self.last_token = now
        return True

    def tpot(self) -> float | None:
        """Seconds per output token after the first; None without usage or with fewer than 2 tokens."""
        return per_token(self.first_token, self.last_token, None if self.tokens is None else self.tokens[1])

    def report(self, into: Generation, *, worker: str) -> None:
        """What the stream showed so far, into ``into``, with the ``worker`` that sent it."""
        into.first_token, into.tpot, into.tokens = self.first_token, self.tpot(), self.tokens
        into.response_id, into.response_model, into.worker = self.response_id, self.response_model, worker
