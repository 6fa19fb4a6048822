"""Deterministic answers of the scripted worker: echo, truncation and the tool-call script.

Plain conversation: the reply is ``"echo: " + <text of the last user message>``. A message's text is its
string content, or its ``type == "text"`` parts joined with ``"\\n"``. ``max_tokens`` (or
``max_completion_tokens``) truncates the reply to that many whitespace-separated words
(finish_reason ``length``). prompt_tokens = words across all message texts (min 1); completion_tokens =
words of the reply, or 1 per tool call.

Tool-call script (only when the request offers ``tools``). Directives are read from the LAST user message
text, one per line (line edges trimmed, other lines ignored):

- ``CALL <tool> <json-arguments>``: a tool call; consecutive CALL lines form one round (parallel calls).
  The arguments text is sent verbatim (``{}`` when omitted).
- ``NEXT``: closes the current round; the following CALL lines form the next round.
- ``FOREVER <tool> <json-arguments>``: appended to every round, forever (scripted rounds first, then
  FOREVER-only rounds); ``{n}`` in the arguments is replaced by the 1-based round number.
- ``RAW <tool> <text>``: a call whose ``arguments`` is exactly ``<text>`` (the rest of the line after
  the space following the tool name), e.g. invalid JSON.
- A directive naming a tool not offered (by ``function.name``) is skipped; a round left empty vanishes.

Round number = assistant messages carrying ``tool_calls`` after the last user message, plus 1. If the
script has that round, the reply is ``content: null`` with tool calls ``call_<round>_<index>`` (index
0-based, as in the stream) and finish_reason ``tool_calls``. Otherwise the reply is the echo when no tool
message follows the last user message, else ``"tool results: " + " | ".join(<tool message texts>)``.
A line ``REPLY <text>`` of the last user message (tools offered or not) replaces that text reply with
exactly ``<text>`` (the first such line), e.g. a JSON object for structured-output tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChatRequest",
    "ChatRequestError",
    "Reply",
    "ToolCall",
    "parse_chat_request",
    "plan_reply",
    "split_words",
]

_DIRECTIVE = re.compile(r"(CALL|FOREVER|RAW)\s+(\S+)(?:\s(.*))?")
_WORD = re.compile(r"\s*\S+\s*")


class ChatRequestError(Exception):
    """A chat request the worker refuses; carries the OpenAI error fields."""

    def __init__(
        self, message: str, *, status: int = 400, param: str | None = None, code: str = "invalid_value"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat completion request the worker acts on."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    offered_tools: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call of an assistant reply; `arguments` is the raw string sent to the client."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """An assistant reply: either `content` or `tool_calls` (then `content` is None)."""

    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a parsed JSON body; unknown fields are ignored.

    Raises:
        ChatRequestError: status 400 for a non-object body, missing/invalid `model` or `messages`, or
            an ill-typed `stream`, `stream_options`, `max_tokens` or `tools`.
    """
    if not isinstance(body, dict):
        raise ChatRequestError("request body must be a JSON object")
    model = model_of(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError(
            "'messages' must be a non-empty array",
            param="messages",
            code="missing_required_parameter" if messages is None else "invalid_value",
        )
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise ChatRequestError("each message must be an object with a string 'role'", param="messages")
    stream, include_usage = stream_flags(body)
    max_tokens = max_tokens_of(body.get("max_completion_tokens", body.get("max_tokens")))
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ChatRequestError("'tools' must be an array", param="tools")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        offered_tools=_offered_names(tools) if tools else None,
    )


def model_of(body: dict[str, Any]) -> str:
    """The request's ``model``. Raises ChatRequestError (400) when it is missing or not a non-empty string."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        code = "missing_required_parameter" if model is None else "invalid_value"
        raise ChatRequestError("'model' must be a non-empty string", param="model", code=code)
    return model


def stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    """``(stream, include_usage)`` of a request. Raises ChatRequestError for an ill-typed ``stream`` or
    ``stream_options``."""
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ChatRequestError("'stream' must be a boolean", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ChatRequestError("'stream_options' must be an object", param="stream_options")
    return stream, options.get("include_usage") is True


def max_tokens_of(value: Any) -> int | None:
    """A token limit as given, or None. Raises ChatRequestError unless it is a positive integer."""
    if value is not None and (type(value) is not int or value < 1):
        raise ChatRequestError("'max_tokens' must be a positive integer", param="max_tokens")
    return value


def plan_reply(request: ChatRequest) -> Reply:
    """Compute the deterministic reply to `request` (see the module docstring)."""
    messages = request.messages
    prompt_tokens = max(1, sum(len(_text_of(m).split()) for m in messages))
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    user_text = _text_of(messages[last_user]) if last_user >= 0 else ""
    after = messages[last_user + 1 :]
    if request.offered_tools:
        round_no = 1 + sum(1 for m in after if m["role"] == "assistant" and m.get("tool_calls"))
        calls = _script_round(user_text, request.offered_tools, round_no)
        if calls:
            return Reply(
                content=None,
                tool_calls=calls,
                finish_reason="tool_calls",
                prompt_tokens=prompt_tokens,
                completion_tokens=len(calls),
            )
    tool_texts = [_text_of(m) for m in after if m["role"] == "tool"]
    content = "tool results: " + " | ".join(tool_texts) if tool_texts else "echo: " + user_text
    scripted = [line.strip()[6:] for line in user_text.splitlines() if line.strip().startswith("REPLY ")]
    if scripted:
        content = scripted[0]
    words = split_words(content)
    finish_reason = "stop"
    if request.max_tokens is not None and len(words) > request.max_tokens:
        words = words[: request.max_tokens]
        words[-1] = words[-1].rstrip()
        content = "".join(words)
        finish_reason = "length"
    return Reply(
        content=content,
        tool_calls=(),
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(words),
    )


def split_words(content: str) -> list[str]:
    """Split `content` into words that keep their surrounding whitespace; they concatenate to `content`
    whenever it contains a non-space character."""
    return _WORD.findall(content)


def _offered_names(tools: list[Any]) -> frozenset[str]:
    names = set()
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return frozenset(names)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def _script_round(text: str, offered: frozenset[str], round_no: int) -> tuple[ToolCall, ...]:
    rounds: list[list[tuple[str, str]]] = [[]]
    forever: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line == "NEXT":
            if rounds[-1]:
                rounds.append([])
            continue
        match = _DIRECTIVE.fullmatch(line)
        if match is None or match[2] not in offered:
            continue
        keyword, name, rest = match[1], match[2], match[3] or ""
        if keyword == "RAW":
            rounds[-1].append((name, rest))
        elif keyword == "CALL":
            rounds[-1].append((name, rest.strip() or "{}"))
        else:
            forever.append((name, rest.strip() or "{}"))
    scripted = [r for r in rounds if r]
    planned = list(scripted[round_no - 1]) if round_no <= len(scripted) else []
    planned += [(name, args.replace("{n}", str(round_no))) for name, args in forever]
    return tuple(
        ToolCall(id=f"call_{round_no}_{i}", name=name, arguments=args)
        for i, (name, args) in enumerate(planned)
    )
