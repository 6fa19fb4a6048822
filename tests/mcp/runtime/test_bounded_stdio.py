"""`bounded_stdio_client` against a real child that writes chosen bytes to its stdout: every kind of
message over the limit, and what reaches the session's read stream for each (then the stream goes on)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import StdioServerParameters
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from pydantic import ValidationError

from smg.mcp.runtime.framing import MESSAGE_TOO_LARGE, MessageTooLarge
from smg.mcp.runtime.stdio_client import bounded_stdio_client

pytestmark = pytest.mark.e2e

LIMIT = 64 * 1024
BIG = "x" * (1024 * 1024)  # sixteen times the limit
WAIT = 30.0

# Writes each step's bytes to stdout (flushed), or, for a step of None, waits for a line on stdin.
CHILD = """
import json, sys
for step in json.load(open(sys.argv[1])):
    if step is None:
        sys.stdin.readline()
    else:
        sys.stdout.buffer.write(step.encode("latin-1"))
        sys.stdout.buffer.flush()
sys.stdin.read()
"""


def _line(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":")) + "\n"


def _response(request_id: int | str, text: str = "ok") -> str:
    return _line(
        {"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": text}]}}
    )


@asynccontextmanager
async def _child(steps: list[str | None], tmp_path: Path) -> AsyncIterator[Any]:
    plan = tmp_path / "steps.json"
    plan.write_text(json.dumps(steps))
    params = StdioServerParameters(command=sys.executable, args=["-c", CHILD, str(plan)])
    with anyio.fail_after(WAIT):
        async with bounded_stdio_client(params, limit=LIMIT, name="scripted") as streams:
            yield streams


def _error_of(item: SessionMessage | Exception) -> tuple[int | str | None, int]:
    assert isinstance(item, SessionMessage), item
    assert isinstance(item.message, JSONRPCError), item.message
    return item.message.id, item.message.error.code


def _result_id(item: SessionMessage | Exception) -> int | str:
    assert isinstance(item, SessionMessage), item
    assert isinstance(item.message, JSONRPCResponse), item.message
    return item.message.id


async def test_a_response_over_the_limit_fails_its_request_before_its_last_byte_arrives(
    tmp_path: Path,
) -> None:
    huge = _response(7, BIG)
    half = len(huge) // 2  # the child stops there until the test writes to its stdin
    async with _child([huge[:half], None, huge[half:], _response(8)], tmp_path) as (read, write):
        assert _error_of(await read.receive()) == (7, MESSAGE_TOO_LARGE)
        await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="go")))
        assert _result_id(await read.receive()) == 8


async def test_a_response_with_its_id_last_fails_its_request_once_it_ends(tmp_path: Path) -> None:
    huge = _line({"result": {"content": [{"type": "text", "text": BIG}]}, "jsonrpc": "2.0", "id": "req-1"})
    async with _child([huge, _response(2)], tmp_path) as (read, _):
        assert _error_of(await read.receive()) == ("req-1", MESSAGE_TOO_LARGE)
        assert _result_id(await read.receive()) == 2


async def test_requests_and_notifications_from_the_server_over_the_limit_are_dropped(tmp_path: Path) -> None:
    request = _line({"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "params": {"x": BIG}})
    notification = _line({"params": {"data": BIG}, "jsonrpc": "2.0", "method": "notifications/message"})
    small = _line({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "small"}})
    async with _child([request, notification, small, _response(3)], tmp_path) as (read, _):
        first = await read.receive()
        assert isinstance(first, SessionMessage) and isinstance(first.message, JSONRPCNotification)
        assert first.message.params == {"data": "small"}
        assert _result_id(await read.receive()) == 3


async def test_a_message_over_the_limit_without_an_id_is_reported_and_the_stream_goes_on(
    tmp_path: Path,
) -> None:
    async with _child(["[" + BIG + "]\n", _response(4)], tmp_path) as (read, _):
        assert isinstance(await read.receive(), MessageTooLarge)
        assert _result_id(await read.receive()) == 4


async def test_a_line_that_is_no_message_fails_alone_and_crlf_endings_are_read(tmp_path: Path) -> None:
    invalid_utf8 = '{"jsonrpc":"2.0","id":5,"result":{"text":"\xff"}}\n'
    request = '{"jsonrpc":"2.0","id":9,"method":"ping"}\r\n'
    async with _child([invalid_utf8, request, _response(6)], tmp_path) as (read, _):
        assert isinstance(await read.receive(), ValidationError)
        ping = await read.receive()
        assert isinstance(ping, SessionMessage) and isinstance(ping.message, JSONRPCRequest)
        assert _result_id(await read.receive()) == 6


async def test_messages_within_the_limit_pass_whole_whatever_the_read_sizes(tmp_path: Path) -> None:
    exact = _response(10, "y" * LIMIT)
    envelope = len(_response(11, "")) - 1  # without the newline
    fits = _response(11, "z" * (LIMIT - envelope))
    assert len(fits) - 1 == LIMIT
    async with _child([fits[:3], fits[3:], exact], tmp_path) as (read, _):
        first = await read.receive()
        assert _result_id(first) == 11
        assert isinstance(first, SessionMessage) and isinstance(first.message, JSONRPCResponse)
        assert first.message.result["content"][0]["text"] == "z" * (LIMIT - envelope)
        assert _error_of(await read.receive()) == (10, MESSAGE_TOO_LARGE)  # its envelope is over
