"""Which offered MCP tools need approval (`gated_tools`): OpenAI's ``require_approval`` forms, and the
checks of a follow-up's answers against its conversation (`answers`)."""

from __future__ import annotations

from typing import Any

import pytest

from smg.errors import InvalidRequest
from smg.mcp.types import ToolInfo
from smg.responses.approval import answers, gated_tools

OFFERED = {
    "notes__add": ToolInfo("notes", "add", None, {}),
    "notes__list": ToolInfo("notes", "list", None, {}, read_only=True),
    "clock__now": ToolInfo("clock", "now", None, {}, read_only=True),
}


def entry(server: str, require_approval: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": server, "require_approval": require_approval}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, set()),
        ("never", set()),
        ("always", {"notes__add", "notes__list"}),
        ({"always": {"tool_names": ["add"]}}, {"notes__add"}),
        ({"never": {"tool_names": ["add"]}}, {"notes__list"}),
        ({"never": {"read_only": True}}, {"notes__add"}),
        ({"always": {"read_only": False}}, {"notes__add"}),
        ({"always": {"tool_names": ["list"]}, "never": {"tool_names": ["add"]}}, {"notes__list"}),
        ({"always": {"tool_names": ["add"]}, "never": {"tool_names": ["add"]}}, {"notes__add"}),
        ({"always": {}}, {"notes__add", "notes__list"}),
    ],
)
def test_require_approval_forms_gate_the_tools_of_their_server_only(policy: Any, expected: set[str]) -> None:
    assert gated_tools([entry("notes", policy)], OFFERED) == expected


def test_two_entries_of_one_server_gate_a_tool_when_either_does() -> None:
    tools = [entry("notes", "never"), entry("notes", {"always": {"tool_names": ["list"]}})]
    assert gated_tools(tools, OFFERED) == {"notes__list"}


REQUEST = {
    "type": "mcp_approval_request",
    "id": "mcpr_1",
    "server_label": "notes",
    "name": "add",
    "arguments": "{}",
}


def reply(approve: bool = True, request_id: str = "mcpr_1") -> dict[str, Any]:
    return {
        "type": "mcp_approval_response",
        "id": "mcpa_1",
        "approval_request_id": request_id,
        "approve": approve,
    }


def test_an_answer_to_a_pending_request_of_the_chain_is_given() -> None:
    (given,) = answers([REQUEST], [reply()])
    assert (given.request, given.approved) == (REQUEST, True)


@pytest.mark.parametrize(
    ("chain", "input_items", "says"),
    [
        ([], [reply()], "no approval request 'mcpr_1'"),
        ([REQUEST, reply(False)], [reply()], "'mcpr_1' was already answered"),
        ([REQUEST, {"type": "mcp_call", "approval_request_id": "mcpr_1"}], [reply()], "already answered"),
        ([REQUEST], [reply(), reply(False)], "already answered"),
        ([REQUEST, {"type": "message", "role": "user"}], [reply()], "no longer pending"),
        ([REQUEST], [{"type": "message", "role": "user"}, reply()], "no longer pending"),
    ],
    ids=["unknown", "denied_before", "run_before", "twice", "went_on_in_chain", "went_on_in_input"],
)
def test_answers_not_pending_are_refused_naming_the_id(
    chain: list[dict[str, Any]], input_items: list[dict[str, Any]], says: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        answers(chain, input_items)
    assert caught.value.param == "input"
    assert says in caught.value.message


def test_an_answer_sent_back_with_its_mcp_call_is_history_not_a_new_answer() -> None:
    run = {"type": "mcp_call", "approval_request_id": "mcpr_1"}
    assert answers([], [REQUEST, reply(), run]) == []
