"""The scope matrix: each kind of key against each way of using the gateway, every cell asserted.

Rows are keys (an ``--api-key`` value, stored keys: unrestricted, scoped to the server ``clock``, to
the tool ``clock__now``, to the model ``other-model``, revoked, expired); columns are requests. A cell
is what the client sees (status, error code) and, for a tool loop, the MCP tools the model was offered.
A column is a function of (gateway, row): a new way in is one more function and one more entry per row
of `EXPECTED`.

The MCP endpoint's columns are the mcp SDK's `Client` over streamable HTTP presenting the key as a
bearer token: it lists the tools (``offered``) and calls one. Their status is the edge's: 200 when it let
the client through (the call's outcome is then in ``code``: "" for a result, `UNKNOWN_TOOL` for the
JSON-RPC error a tool that does not exist gets), else the refusal's status and ``X-SMG-Error-Code``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, TextContent

from tests.keys.conftest import KeyedGateway

pytestmark = pytest.mark.e2e

CLOCK = frozenset({"clock__now", "clock__convert"})
NOW = frozenset({"clock__now"})
CALC = frozenset({"calc__evaluate"})
EVERY_TOOL = CLOCK | CALC
UNKNOWN_TOOL = "unknown_tool"


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


class McpCall(NamedTuple):
    """A ``tools/call`` of ``tool`` of ``server``; ``answered`` tells whether a result's text answers it."""

    server: str
    tool: str
    arguments: dict[str, Any]
    answered: Callable[[str], bool]


async def _mcp_cell(url: str, key: str, name: str, call: McpCall) -> Cell:
    """What an MCP client presenting ``key`` to ``url`` sees: the tools listed, the call of ``name``."""
    refusals: list[tuple[int, str]] = []  # the edge's answers (OpenAI-shaped, with X-SMG-Error-Code)

    async def record(response: httpx2.Response) -> None:
        if "x-smg-error-code" in response.headers:
            refusals.append((response.status_code, response.headers["x-smg-error-code"]))

    headers = {"Authorization": f"Bearer {key}"}
    try:
        with anyio.fail_after(60):
            async with (
                httpx2.AsyncClient(headers=headers, event_hooks={"response": [record]}, timeout=30) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                listed = frozenset(tool.name for tool in (await client.list_tools()).tools)
                try:
                    result = await client.call_tool(name, call.arguments)
                except MCPError as exc:
                    assert (exc.error.code, exc.error.message) == (INVALID_PARAMS, f"Unknown tool: {name}")
                    return Cell(200, UNKNOWN_TOOL, listed)
    except ExceptionGroup as group:
        # The SDK reads a refused request (a non-JSON-RPC body) as MCPError -32603 "Server returned an
        # error response", raised from its task group on connecting.
        _, rest = group.split(lambda e: isinstance(e, MCPError) and e.error.code == INTERNAL_ERROR)
        assert rest is None, group
        assert refusals and len(set(refusals)) == 1, refusals
        return Cell(*refusals[0])
    assert not refusals, refusals
    text = "".join(block.text for block in result.content if isinstance(block, TextContent))
    assert not result.is_error and call.answered(text), text
    return Cell(200, "", listed)


def _mcp_endpoint(call: McpCall) -> Callable[[KeyedGateway, str], Cell]:
    """``/mcp``, calling the tool by its ``<server>__<tool>`` name."""

    def column(gw: KeyedGateway, row: str) -> Cell:
        name = f"{call.server}__{call.tool}"
        return anyio.run(_mcp_cell, gw.url + "/mcp", gw.secrets[row], name, call)

    return column


def _mcp_scoped(call: McpCall) -> Callable[[KeyedGateway, str], Cell]:
    """``/mcp/scoped/{server}``, calling the tool by its own name."""

    def column(gw: KeyedGateway, row: str) -> Cell:
        url = f"{gw.url}/mcp/scoped/{call.server}"
        return anyio.run(_mcp_cell, url, gw.secrets[row], call.tool, call)

    return column


def _reads_utc(text: str) -> bool:
    return bool(json.loads(text)["timezone"] == "UTC")


NOW_CALL = McpCall("clock", "now", {}, _reads_utc)
CONVERT_CALL = McpCall(
    "clock",
    "convert",
    {"time": "2026-01-01T12:00:00", "from_timezone": "UTC", "to_timezone": "UTC"},
    lambda text: bool(json.loads(text)["time"] == "2026-01-01T12:00:00+00:00"),
)
EVALUATE_CALL = McpCall("calc", "evaluate", {"expression": "6*7"}, lambda text: text == "42")

_SIX_TIMES_SEVEN = 'calc__evaluate {"expression": "6*7"}'
COLUMNS: dict[str, Callable[[KeyedGateway, str], Cell]] = {
    "plain chat": plain_chat,
    "chat loop, clock": _chat_loop("clock", "clock__now {}"),
    "chat loop, calc": _chat_loop("calc", _SIX_TIMES_SEVEN),
    "responses loop, clock": _responses_loop("clock", "clock__now {}"),
    "responses loop, calc": _responses_loop("calc", _SIX_TIMES_SEVEN),
    "/mcp, clock__now": _mcp_endpoint(NOW_CALL),
    "/mcp, clock__convert": _mcp_endpoint(CONVERT_CALL),
    "/mcp, calc__evaluate": _mcp_endpoint(EVALUATE_CALL),
    "/mcp/scoped/clock, now": _mcp_scoped(NOW_CALL),
    "/mcp/scoped/calc, evaluate": _mcp_scoped(EVALUATE_CALL),
}
MCP_COLUMNS = [column for column in COLUMNS if column.startswith("/mcp")]

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

# No model is named on the MCP endpoint: a key scoped to models only reaches every tool there.
_EVERY_MCP_TOOL = {
    **dict.fromkeys(
        ["/mcp, clock__now", "/mcp, clock__convert", "/mcp, calc__evaluate"], Cell(200, "", EVERY_TOOL)
    ),
    "/mcp/scoped/clock, now": Cell(200, "", frozenset({"now", "convert"})),
    "/mcp/scoped/calc, evaluate": Cell(200, "", frozenset({"evaluate"})),
}
_EVERYTHING = {"plain chat": OK, **{c: Cell(200, "", t) for c, t in _ALL.items()}, **_EVERY_MCP_TOOL}

EXPECTED: dict[str, dict[str, Cell]] = {
    "flag key": _EVERYTHING,
    "unrestricted": _EVERYTHING,
    "server": {
        "plain chat": OK,
        "chat loop, clock": Cell(200, "", CLOCK),
        "chat loop, calc": SERVER_FORBIDDEN,
        "responses loop, clock": Cell(200, "", CLOCK),
        "responses loop, calc": SERVER_FORBIDDEN,
        "/mcp, clock__now": Cell(200, "", CLOCK),
        "/mcp, clock__convert": Cell(200, "", CLOCK),
        "/mcp, calc__evaluate": Cell(200, UNKNOWN_TOOL, CLOCK),
        "/mcp/scoped/clock, now": Cell(200, "", frozenset({"now", "convert"})),
        "/mcp/scoped/calc, evaluate": SERVER_FORBIDDEN,
    },
    "tool": {
        "plain chat": OK,
        "chat loop, clock": Cell(200, "", NOW),
        "chat loop, calc": SERVER_FORBIDDEN,
        "responses loop, clock": Cell(200, "", NOW),
        "responses loop, calc": SERVER_FORBIDDEN,
        "/mcp, clock__now": Cell(200, "", NOW),
        "/mcp, clock__convert": Cell(200, UNKNOWN_TOOL, NOW),
        "/mcp, calc__evaluate": Cell(200, UNKNOWN_TOOL, NOW),
        "/mcp/scoped/clock, now": Cell(200, "", frozenset({"now"})),
        "/mcp/scoped/calc, evaluate": SERVER_FORBIDDEN,
    },
    "model": {
        **{c: MODEL_FORBIDDEN for c in COLUMNS if c not in MCP_COLUMNS},
        **_EVERY_MCP_TOOL,
    },
    "revoked": dict.fromkeys(COLUMNS, UNAUTHENTICATED),
    "expired": dict.fromkeys(COLUMNS, UNAUTHENTICATED),
}
CELLS = [(row, column) for row in EXPECTED for column in COLUMNS]


def test_every_row_has_a_cell_in_every_column() -> None:
    assert all(set(cells) == set(COLUMNS) for cells in EXPECTED.values())


@pytest.mark.parametrize(("row", "column"), CELLS, ids=[f"{r}-{c}" for r, c in CELLS])
def test_scope_matrix(keyed: KeyedGateway, row: str, column: str) -> None:
    assert COLUMNS[column](keyed, row) == EXPECTED[row][column]
