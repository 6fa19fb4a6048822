"""Responses items: the client's input normalised, and a conversation of items turned into chat messages.

Input items accepted: messages (``role`` user, system, developer or assistant; ``content`` a string or
``input_text`` / ``output_text`` parts), ``function_call``, ``function_call_output``,
``mcp_approval_response`` (the answer to an approval request), and the gateway's own earlier output items
``mcp_list_tools``, ``mcp_call`` and ``mcp_approval_request``. Anything else is refused with a 400 naming
the item (``input[i]``), never dropped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from smg.errors import InvalidRequest
from smg.responses.approval import denial_text

_ROLES = ("user", "system", "developer", "assistant")
_TEXT_PARTS = ("input_text", "output_text")
_ROUND_ID = re.compile(r"mcp_([0-9a-f]{16})[0-9a-f]{16}")
_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "mcp_call": "mcp",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
}


def new_id(prefix: str) -> str:
    """A fresh identifier in OpenAI's style: ``<prefix>_`` and 32 hex digits."""
    return f"{prefix}_{secrets.token_hex(16)}"


def new_round_key() -> str:
    """The key of one model round's ``mcp_call`` ids (`mcp_call_id`)."""
    return secrets.token_hex(8)


def mcp_call_id(round_key: str) -> str:
    """An ``mcp_call`` id in OpenAI's shape (``mcp_`` and 32 hex digits) whose first 16 digits are its
    model round's key: the round survives a client sending the items back, and the model is shown
    its rounds as it made them."""
    return f"mcp_{round_key}{secrets.token_hex(8)}"


def _round_of(item_id: str) -> str | None:
    match = _ROUND_ID.fullmatch(item_id)
    return match.group(1) if match else None


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
    elif kind == "mcp_approval_request":
        _require_str(raw, ("id", "server_label", "name", "arguments"), where)
        item = {k: raw[k] for k in ("server_label", "name", "arguments")} | {"type": kind}
    elif kind == "mcp_approval_response":
        _require_str(raw, ("approval_request_id",), where)
        if not isinstance(raw.get("approve"), bool):
            raise InvalidRequest("'approve' must be a boolean", param=f"{where}.approve")
        reason = raw.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidRequest("'reason' must be a string", param=f"{where}.reason")
        item = {"type": kind, "approval_request_id": raw["approval_request_id"], "approve": raw["approve"]}
        item["reason"] = reason
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
    """Chat messages from items: a call joins the open assistant message (the one before it, or a new
    one) while it belongs to the same model round, and the results follow that message once all its
    calls are known. The calls of one round are either all run by the gateway (``mcp_call``) or all
    handed back (``function_call``, ``mcp_approval_request``): a round with a call that needs approval
    or a client function runs none of its MCP calls. So a call of the other kind, any call after a
    result the client supplied, or an ``mcp_call`` of another round (`mcp_call_id`) opens a new round.
    ``mcp_call``s whose ids carry no round key (another gateway's) read as one round when adjacent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._assistant: dict[str, Any] | None = None
        self._ran: bool | None = None  # whether the open message's calls ran in the gateway
        self._round: str | None = None  # the round key of the open message's gateway calls
        self._answered = False  # a result the client supplied follows the open message
        self._results: list[dict[str, Any]] = []

    def flush(self) -> None:
        self.messages += self._results
        self._results = []
        self._assistant = None
        self._ran = None
        self._round = None
        self._answered = False

    def message(self, role: str, text: str) -> None:
        self.flush()
        self.messages.append({"role": "system" if role == "developer" else role, "content": text})
        if role == "assistant":
            self._assistant = self.messages[-1]

    def call(self, call_id: str, name: str, arguments: str, *, ran: bool) -> None:
        round_key = _round_of(call_id) if ran else None
        other_round = self._answered or (self._ran is not None and self._ran != ran)
        if self._assistant is None or other_round or (ran and self._ran and round_key != self._round):
            self.flush()
            self._assistant = {"role": "assistant", "content": None}
            self.messages.append(self._assistant)
        self._ran = ran
        self._round = round_key
        self._assistant.setdefault("tool_calls", []).append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )

    def result(self, call_id: str, text: str, *, supplied: bool) -> None:
        self._results.append({"role": "tool", "tool_call_id": call_id, "content": text})
        self._answered = self._answered or supplied


def _call_result(item: dict[str, Any]) -> str:
    error = item.get("error")
    return error_text(error) if error else str(item.get("output") or "")


def to_messages(items: list[dict[str, Any]], *, exposed: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """The chat messages a conversation of items stands for. ``exposed(server, tool)`` is the function
    name an MCP tool has in this request (an earlier ``mcp_call`` is shown to the model as a call of it
    with its output or error as the result); ``mcp_list_tools`` items are not messages. An answered
    ``mcp_approval_request`` is a call whose result, at its answer's place, is the output of the
    ``mcp_call`` that carries its ``approval_request_id`` (approved) or a denial with the ``reason``; an
    unanswered one is no message (the model asked, nothing ran)."""
    answers = {i["approval_request_id"]: i for i in items if i["type"] == "mcp_approval_response"}
    runs = {
        i["approval_request_id"]: i for i in items if i["type"] == "mcp_call" and i.get("approval_request_id")
    }
    asked = {i["id"] for i in items if i["type"] == "mcp_approval_request" and i["id"] in answers}
    out = _Builder()
    for item in items:
        kind = item["type"]
        if kind == "mcp_approval_request" and item["id"] in asked:
            name = exposed(item["server_label"], item["name"])
            out.call(item["id"], name, item["arguments"] or "{}", ran=False)
        elif kind == "mcp_approval_response" and item["approval_request_id"] in asked:
            run = runs.get(item["approval_request_id"])
            if item["approve"] is not True:
                text = denial_text(item.get("reason"))
            else:
                text = _call_result(run) if run is not None else "error: approved, but no result was recorded"
            out.result(item["approval_request_id"], text, supplied=True)
        elif kind == "message":
            out.message(item["role"], text_of(item))
        elif kind == "function_call":
            out.call(item["call_id"], item["name"], item["arguments"], ran=False)
        elif kind == "function_call_output":
            out.result(item["call_id"], item["output"], supplied=True)
        elif kind == "mcp_call" and item.get("approval_request_id") not in asked:
            name = exposed(item["server_label"], item["name"])
            out.call(item["id"], name, item.get("arguments") or "{}", ran=True)
            out.result(item["id"], _call_result(item), supplied=False)
    out.flush()
    return out.messages
