"""Responses items: the client's input normalised, and a conversation of items turned into chat messages.

Input items accepted: messages (``role`` user, system, developer or assistant; ``content`` a string or
``input_text`` / ``output_text`` parts), ``function_call``, ``function_call_output``, and the gateway's
own earlier output items ``mcp_list_tools`` and ``mcp_call``. Anything else is refused with a 400 naming
the item (``input[i]``), never dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from smg.errors import InvalidRequest

_ROLES = ("user", "system", "developer", "assistant")
_TEXT_PARTS = ("input_text", "output_text")
_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "mcp_call": "mcp"}


def new_id(prefix: str) -> str:
    """A fresh identifier in OpenAI's style: ``<prefix>_`` and 32 hex digits."""
    return f"{prefix}_{secrets.token_hex(16)}"


def _text_parts(content: Any, role: str, where: str) -> list[dict[str, Any]]:
    kind = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        return [_part(kind, content)]
    if not isinstance(content, list):
        raise InvalidRequest(
            "message 'content' must be a string or an array of parts", param=f"{where}.content"
        )
    parts = []
    for j, part in enumerate(content):
        ok = isinstance(part, dict) and part.get("type") in _TEXT_PARTS and isinstance(part.get("text"), str)
        if not ok:
            raise InvalidRequest(
                "only 'input_text' and 'output_text' parts are supported", param=f"{where}.content[{j}]"
            )
        parts.append(_part(part["type"], part["text"]))
    return parts


def _part(kind: str, text: str) -> dict[str, Any]:
    return (
        {"type": kind, "text": text, "annotations": []}
        if kind == "output_text"
        else {"type": kind, "text": text}
    )


def _require_str(item: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if not isinstance(item.get(key), str):
            raise InvalidRequest(f"'{key}' must be a string", param=f"{where}.{key}")


def _item(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest("an input item must be an object", param=where)
    kind = raw.get("type", "message" if "role" in raw else None)
    if kind == "message":
        role = raw.get("role")
        if role not in _ROLES:
            raise InvalidRequest(f"'role' must be one of {', '.join(_ROLES)}", param=f"{where}.role")
        item = {"type": "message", "role": role, "content": _text_parts(raw.get("content"), role, where)}
        item["status"] = "completed"
    elif kind == "function_call":
        _require_str(raw, ("call_id", "name", "arguments"), where)
        item = {k: raw[k] for k in ("call_id", "name", "arguments")} | {"type": kind, "status": "completed"}
    elif kind == "function_call_output":
        _require_str(raw, ("call_id", "output"), where)
        item = {"type": kind, "call_id": raw["call_id"], "output": raw["output"], "status": "completed"}
    elif kind in ("mcp_list_tools", "mcp_call"):
        _require_str(raw, ("server_label",) if kind == "mcp_list_tools" else ("server_label", "name"), where)
        item = dict(raw)
    else:
        raise InvalidRequest(f"input items of type {kind!r} are not supported", param=f"{where}.type")
    item["id"] = raw["id"] if isinstance(raw.get("id"), str) else new_id(_PREFIX.get(str(kind), "item"))
    return item


def normalise_input(raw: Any) -> list[dict[str, Any]]:
    """The request's ``input`` as items, each with an ``id``: a string is one user message. Raises
    InvalidRequest (``param``: ``input`` or ``input[i]...``)."""
    if isinstance(raw, str):
        return [_item({"type": "message", "role": "user", "content": raw}, "input")]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty array of items", param="input")
    return [_item(entry, f"input[{i}]") for i, entry in enumerate(raw)]


def text_of(item: dict[str, Any]) -> str:
    """The text of a message item, its parts joined by newlines."""
    return "\n".join(part["text"] for part in item.get("content", []) if isinstance(part.get("text"), str))


def error_text(error: Any) -> str:
    """The text of an ``mcp_call`` error: a string as is, an error object's ``message`` or the texts of
    its ``content``."""
    if not isinstance(error, dict):
        return str(error)
    content = error.get("content")
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(error.get("message") or content or error)


class _Builder:
    """Chat messages from items: calls join the assistant message before them (or a new one), and their
    results follow that message once all its calls are known (consecutive rounds of calls without text
    between them read as one round)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._assistant: dict[str, Any] | None = None
        self._results: list[dict[str, Any]] = []

    def flush(self) -> None:
        self.messages += self._results
        self._results = []
        self._assistant = None

    def message(self, role: str, text: str) -> None:
        self.flush()
        self.messages.append({"role": "system" if role == "developer" else role, "content": text})
        if role == "assistant":
            self._assistant = self.messages[-1]

    def call(self, call_id: str, name: str, arguments: str) -> None:
        if self._assistant is None:
            self.flush()
            self._assistant = {"role": "assistant", "content": None}
            self.messages.append(self._assistant)
        self._assistant.setdefault("tool_calls", []).append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )

    def result(self, call_id: str, text: str) -> None:
        self._results.append({"role": "tool", "tool_call_id": call_id, "content": text})


def to_messages(items: list[dict[str, Any]], *, exposed: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """The chat messages a conversation of items stands for. ``exposed(server, tool)`` is the function
    name an MCP tool has in this request (an earlier ``mcp_call`` is shown to the model as a call of it
    with its output or error as the result); ``mcp_list_tools`` items are not messages."""
    out = _Builder()
    for item in items:
        kind = item["type"]
        if kind == "message":
            out.message(item["role"], text_of(item))
        elif kind == "function_call":
            out.call(item["call_id"], item["name"], item["arguments"])
        elif kind == "function_call_output":
            out.result(item["call_id"], item["output"])
        elif kind == "mcp_call":
            out.call(item["id"], exposed(item["server_label"], item["name"]), item.get("arguments") or "{}")
            error = item.get("error")
            out.result(item["id"], error_text(error) if error else str(item.get("output") or ""))
    out.flush()
    return out.messages
