"""The scope matrix: each kind of key against each way of using the gateway, every cell asserted.

Rows are keys (an ``--api-key`` value, stored keys: unrestricted, scoped to the server ``clock``, to
the tool ``clock__now``, to the model ``other-model``, revoked, expired); columns are requests. A cell
is what the client sees (status, error code) and, for a tool loop, the MCP tools the model was offered.
A column is a function of (gateway, row): a new way in (an MCP endpoint) is one more function and one
more entry per row of `EXPECTED`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import pytest

from tests.keys.conftest import KeyedGateway

pytestmark = pytest.mark.e2e

CLOCK = frozenset({"clock__now", "clock__convert"})
NOW = frozenset({"clock__now"})
CALC = frozenset({"calc__evaluate"})


class Cell(NamedTuple):
    status: int
    code: str = ""  # the error code (body and X-SMG-Error-Code), "" for a success
    offered: frozenset[str] = frozenset()  # MCP tools the model was offered


def _outcome(resp: httpx.Response, offered: frozenset[str] = frozenset()) -> Cell:
    if resp.status_code >= 400:
        code = resp.json()["error"]["code"]
        assert resp.headers["x-smg-error-code"] == code
        return Cell(resp.status_code, code)
    return Cell(resp.status_code, "", offered)


def _mcp(server: str) -> list[dict[str, Any]]:
    return [{"type": "mcp", "server_label": server, "require_approval": "never"}]


def plain_chat(gw: KeyedGateway, row: str) -> Cell:
    with gw.client(row) as client:
        resp = client.post("/v1/chat/completions", json={"model": "mock-model", "messages": [_user("hi")]})
    if resp.status_code == 200:
        assert resp.json()["choices"][0]["message"]["content"] == "echo: hi"
    return _outcome(resp)


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _chat_loop(server: str, call: str) -> Callable[[KeyedGateway, str], Cell]:
    def column(gw: KeyedGateway, row: str) -> Cell:
        httpx.delete(gw.worker + "/_smg/requests", timeout=10)
        body = {"model": "mock-model", "messages": [_user(f"CALL {call}")], "tools": _mcp(server)}
        with gw.client(row) as client:
            resp = client.post("/v1/chat/completions", json=body)
        if resp.status_code != 200:
            return _outcome(resp)
        sent = httpx.get(gw.worker + "/_smg/requests", timeout=10).json()
        assert len(sent) == 2  # the model asked for the call, then read its result
        content = resp.json()["choices"][0]["message"]["content"]
        assert content.startswith("tool results: ") and "error" not in content.lower(), content
        return _outcome(resp, frozenset(t["function"]["name"] for t in sent[0]["body"]["tools"]))

    return column


def _responses_loop(server: str, call: str) -> Callable[[KeyedGateway, str], Cell]:
    def column(gw: KeyedGateway, row: str) -> Cell:
        body = {"model": "mock-model", "input": f"CALL {call}", "tools": _mcp(server), "store": False}
        with gw.client(row) as client:
            resp = client.post("/v1/responses", json=body)
        if resp.status_code != 200:
            return _outcome(resp)
        output = resp.json()["output"]
        assert [i["type"] for i in output] == ["mcp_list_tools", "mcp_call", "message"]
        assert output[1]["status"] == "completed"
        listed = output[0]
        return _outcome(resp, frozenset(f"{listed['server_label']}__{t['name']}" for t in listed["tools"]))

    return column


_SIX_TIMES_SEVEN = 'calc__evaluate {"expression": "6*7"}'
COLUMNS: dict[str, Callable[[KeyedGateway, str], Cell]] = {
    "plain chat": plain_chat,
    "chat loop, clock": _chat_loop("clock", "clock__now {}"),
    "chat loop, calc": _chat_loop("calc", _SIX_TIMES_SEVEN),
    "responses loop, clock": _responses_loop("clock", "clock__now {}"),
    "responses loop, calc": _responses_loop("calc", _SIX_TIMES_SEVEN),
}

OK = Cell(200)
SERVER_FORBIDDEN = Cell(403, "mcp_server_forbidden")
MODEL_FORBIDDEN = Cell(403, "model_forbidden")
UNAUTHENTICATED = Cell(401, "invalid_api_key")
_ALL = {
    "chat loop, clock": CLOCK,
    "chat loop, calc": CALC,
    "responses loop, clock": CLOCK,
    "responses loop, calc": CALC,
}

EXPECTED: dict[str, dict[str, Cell]] = {
    "flag key": {"plain chat": OK, **{c: Cell(200, "", t) for c, t in _ALL.items()}},
    "unrestricted": {"plain chat": OK, **{c: Cell(200, "", t) for c, t in _ALL.items()}},
    "server": {
        "plain chat": OK,
        "chat loop, clock": Cell(200, "", CLOCK),
        "chat loop, calc": SERVER_FORBIDDEN,
        "responses loop, clock": Cell(200, "", CLOCK),
        "responses loop, calc": SERVER_FORBIDDEN,
    },
    "tool": {
        "plain chat": OK,
        "chat loop, clock": Cell(200, "", NOW),
        "chat loop, calc": SERVER_FORBIDDEN,
        "responses loop, clock": Cell(200, "", NOW),
        "responses loop, calc": SERVER_FORBIDDEN,
    },
    "model": dict.fromkeys(COLUMNS, MODEL_FORBIDDEN),
    "revoked": dict.fromkeys(COLUMNS, UNAUTHENTICATED),
    "expired": dict.fromkeys(COLUMNS, UNAUTHENTICATED),
}
CELLS = [(row, column) for row in EXPECTED for column in COLUMNS]


def test_every_row_has_a_cell_in_every_column() -> None:
    assert all(set(cells) == set(COLUMNS) for cells in EXPECTED.values())


@pytest.mark.parametrize(("row", "column"), CELLS, ids=[f"{r}-{c}" for r, c in CELLS])
def test_scope_matrix(keyed: KeyedGateway, row: str, column: str) -> None:
    assert COLUMNS[column](keyed, row) == EXPECTED[row][column]
