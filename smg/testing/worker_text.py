"""The scripted worker's ``/v1/completions`` and ``/v1/embeddings``: deterministic answers and their wire
encoding.

Completions: ``prompt`` is a string, an array of strings, or token arrays (a token array's text is its
numbers joined by spaces); each prompt is answered by one choice (``index`` its position) with
``"echo: " + <prompt>``, cut to ``max_tokens`` whitespace-separated words (finish_reason ``length``).
prompt_tokens = words across the prompts (at least 1), completion_tokens = words of the answers. A stream
sends, per choice, one chunk per word (``text``), then a chunk with ``text: ""`` and the finish_reason;
then, only when usage was asked for, a ``"choices": []`` chunk with usage; then ``data: [DONE]``.
Ids are ``cmpl-mock-<n>``, n counting the worker's completions requests.

Embeddings: ``input`` as ``prompt`` above; each input gets an 8-float vector derived from the SHA-256 of
its text (each float k/128, exact in float32), as a list, or with ``encoding_format: "base64"`` as the
base64 of its little-endian float32 bytes (what openai-python asks for by default). usage.prompt_tokens =
total_tokens = words across the inputs (at least 1).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from smg.testing.worker_render import DONE_EVENT
from smg.testing.worker_script import ChatRequestError, max_tokens_of, model_of, split_words, stream_flags

__all__ = ["TextRequest", "completion_events", "completion_json", "embedding_json", "parse_text_request"]

_DIMENSIONS = 8


@dataclass(frozen=True, slots=True)
class TextRequest:
    """The parts of a completions or embeddings request the worker acts on."""

    model: str
    texts: tuple[str, ...]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    base64: bool


def parse_text_request(body: Any, *, field: str) -> TextRequest:
    """Validate a completions (``field="prompt"``) or embeddings (``field="input"``) body.

    Raises:
        ChatRequestError: 400 for a non-object body, a missing or invalid ``model`` or ``field``, or an
            ill-typed ``stream``, ``stream_options`` or ``max_tokens``.
    """
    if not isinstance(body, dict):
        raise ChatRequestError("request body must be a JSON object")
    model = model_of(body)
    texts = _texts(body.get(field))
    if texts is None:
        code = "missing_required_parameter" if body.get(field) is None else "invalid_value"
        raise ChatRequestError(f"'{field}' must be a string or an array", param=field, code=code)
    stream, include_usage = stream_flags(body)
    return TextRequest(
        model=model,
        texts=texts,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens_of(body.get("max_tokens")),
        base64=body.get("encoding_format") == "base64",
    )


def _texts(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not value:
        return None
    if all(type(v) is int for v in value):
        return (" ".join(map(str, value)),)
    texts = []
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, list) and all(type(v) is int for v in item):
            texts.append(" ".join(map(str, item)))
        else:
            return None
    return tuple(texts)


def _answers(request: TextRequest) -> list[tuple[list[str], str]]:
    """Per prompt: the answer's words (concatenating to its text) and its finish_reason."""
    answers = []
    for text in request.texts:
        words = split_words("echo: " + text)
        finish = "stop"
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words = words[: request.max_tokens]
            words[-1] = words[-1].rstrip()
            finish = "length"
        answers.append((words, finish))
    return answers


def _prompt_tokens(request: TextRequest) -> int:
    return max(1, sum(len(text.split()) for text in request.texts))


def _usage(request: TextRequest, answers: list[tuple[list[str], str]]) -> dict[str, int]:
    prompt = _prompt_tokens(request)
    completion = sum(len(words) for words, _ in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_json(request: TextRequest, *, completion_id: str, created: int) -> bytes:
    """A non-stream ``text_completion`` object."""
    answers = _answers(request)
    choices = [
        {"index": i, "text": "".join(words), "logprobs": None, "finish_reason": finish}
        for i, (words, finish) in enumerate(answers)
    ]
    head = {"id": completion_id, "object": "text_completion", "created": created, "model": request.model}
    return orjson.dumps(head | {"choices": choices, "usage": _usage(request, answers)})


def completion_events(request: TextRequest, *, completion_id: str, created: int) -> list[bytes]:
    """The complete list of SSE events of a completions stream, ``[DONE]`` last."""
    answers = _answers(request)
    head = {"id": completion_id, "object": "text_completion", "created": created, "model": request.model}

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps(head | {"choices": choices} | extra) + b"\n\n"

    events = []
    for i, (words, finish) in enumerate(answers):
        events += [
            event([{"index": i, "text": word, "logprobs": None, "finish_reason": None}]) for word in words
        ]
        events.append(event([{"index": i, "text": "", "logprobs": None, "finish_reason": finish}]))
    if request.include_usage:
        events.append(event([], usage=_usage(request, answers)))
    events.append(DONE_EVENT)
    return events


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128 for b in digest[:_DIMENSIONS]]


def embedding_json(request: TextRequest) -> bytes:
    """An embeddings ``list`` object, one embedding per input."""
    data = []
    for i, text in enumerate(request.texts):
        vector = _vector(text)
        encoded: Any = vector
        if request.base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    tokens = _prompt_tokens(request)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return orjson.dumps({"object": "list", "data": data, "model": request.model, "usage": usage})
