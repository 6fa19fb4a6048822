"""MCP approvals of the Responses API: which calls need one, and the answers a follow-up request gives.

``require_approval`` of an ``mcp`` tool is ``"never"`` (the default here), ``"always"``, or OpenAI's
filter object ``{"always": FILTER, "never": FILTER}`` where a FILTER is ``{"tool_names": [...],
"read_only": bool}`` (both optional; a tool matches when its name is listed, if names are given, and its
MCP ``readOnlyHint`` equals ``read_only``, if given). With a filter object a tool matched by ``always``
needs approval, one matched by ``never`` does not, and one matched by neither needs approval only when
the object has no ``always`` part (``{"never": ...}`` reads "every tool but these"). When several entries
name one server, a tool needs approval when any of them says so.

A reply that asks for a call needing approval is held whole (ADR 0013): nothing of that round runs, each
such call becomes an ``mcp_approval_request`` item, and the response ends. A follow-up's
``mcp_approval_response`` items are checked against the conversation (`answers`): each must name a
request of it that no earlier response answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from smg.errors import InvalidRequest
from smg.mcp.types import ToolInfo

_FILTER_KEYS = frozenset({"tool_names", "read_only"})


class ApprovalObserver(Protocol):
    """Telemetry of approvals; implementations must not raise."""

    def on_approval(self, decision: str) -> None:
        """An approval was ``requested`` (one per request item), ``approved`` or ``denied``."""
        ...


class NullApprovalObserver:
    """An ApprovalObserver that records nothing."""

    def on_approval(self, decision: str) -> None:
        pass


def check_require_approval(value: Any, param: str) -> None:
    """Validate an ``mcp`` tool's ``require_approval``. Raises InvalidRequest naming ``param``."""
    if value is None or value in ("always", "never"):
        return
    if not isinstance(value, dict) or not set(value) <= {"always", "never"}:
        raise InvalidRequest(
            "'require_approval' must be 'always', 'never' or an object with 'always' and/or 'never'",
            param=param,
        )
    for part, flt in value.items():
        if flt is None:
            continue
        names = flt.get("tool_names") if isinstance(flt, dict) else None
        ok = (
            isinstance(flt, dict)
            and set(flt) <= _FILTER_KEYS
            and (names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names)))
            and flt.get("read_only") in (None, True, False)
        )
        if not ok:
            raise InvalidRequest(
                "a require_approval filter is {'tool_names': [names], 'read_only': bool}",
                param=f"{param}.{part}",
            )


def _matches(flt: Any, info: ToolInfo) -> bool:
    if not isinstance(flt, dict):
        return False
    names, read_only = flt.get("tool_names"), flt.get("read_only")
    return (names is None or info.name in names) and (read_only is None or info.read_only is read_only)


def _needs(policy: Any, info: ToolInfo) -> bool:
    if not isinstance(policy, dict):
        return bool(policy == "always")
    if _matches(policy.get("always"), info):
        return True
    if _matches(policy.get("never"), info):
        return False
    return policy.get("always") is None and policy.get("never") is not None


def gated_tools(request_tools: list[dict[str, Any]], offered: Mapping[str, ToolInfo]) -> frozenset[str]:
    """The exposed names of the offered MCP tools whose calls need approval."""
    policies: dict[str, list[Any]] = {}
    for tool in request_tools:
        if tool.get("type") == "mcp":
            policies.setdefault(str(tool.get("server_label")), []).append(tool.get("require_approval"))
    return frozenset(
        exposed
        for exposed, info in offered.items()
        if any(_needs(p, info) for p in policies.get(info.server, ()))
    )


@dataclass(frozen=True)
class Answer:
    """A new answer of this request: the ``mcp_approval_request`` item it answers and the answer item."""

    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def approved(self) -> bool:
        return self.response["approve"] is True


def answers(chain: list[dict[str, Any]], input_items: list[dict[str, Any]]) -> list[Answer]:
    """The approval answers ``input_items`` give, in order. ``chain``: the items of the stored
    conversation (the ``previous_response_id`` chain). An answer whose approved call is already in the
    input as an ``mcp_call`` (a client sending the whole conversation back) is history, not new. Raises
    InvalidRequest (``param``: ``input``) for an id no request of the conversation has, one answered
    already (by an earlier response, or twice in this request), or one the conversation went on after
    (a message between the request and its answer: its result would no longer follow the call)."""
    replayed = {i.get("approval_request_id") for i in input_items if i["type"] == "mcp_call"} - {None}
    pending: dict[str, dict[str, Any]] = {}
    answered: set[Any] = set()
    stale: set[str] = set()
    out: list[Answer] = []
    for n, item in enumerate(chain + input_items):
        kind, request_id = item["type"], item.get("approval_request_id")
        if kind == "mcp_approval_request":
            pending[item["id"]] = item
        elif kind == "message":
            stale |= set(pending)
            pending = {}
        elif kind == "mcp_call" or (kind == "mcp_approval_response" and n < len(chain)):
            answered.add(request_id)
        elif kind == "mcp_approval_response" and request_id not in replayed:
            if request_id in answered:
                raise InvalidRequest(f"approval request {request_id!r} was already answered", param="input")
            if request_id in stale:
                raise InvalidRequest(
                    f"approval request {request_id!r} is no longer pending:"
                    " the conversation went on after it",
                    param="input",
                )
            if request_id not in pending:
                raise InvalidRequest(
                    f"no approval request {request_id!r} in this conversation"
                    " (the chain of previous_response_id and this input)",
                    param="input",
                )
            answered.add(request_id)
            out.append(Answer(pending[request_id], item))
    return out


def denial_text(reason: Any) -> str:
    """What the model reads for a denied call."""
    text = "error (denied): the user did not approve this call; it was not run"
    return f"{text}. Reason: {reason}" if isinstance(reason, str) and reason else text
