"""Request limits of a chat body: too many messages or tools, each refused with its own code."""

from __future__ import annotations

import orjson
import pytest

from smg.protocol import TooManyMessages, TooManyTools, parse_chat_request
from smg.settings import RequestLimits


def _body(messages: int, tools: int = 0) -> bytes:
    return orjson.dumps(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}] * messages,
            "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(tools)],
        }
    )


def test_request_limits_refuse_too_many_messages_or_tools_with_their_own_codes() -> None:
    limits = RequestLimits(max_messages=3, max_tools=2)

    parse_chat_request(_body(3, 2), headers={}, limits=limits)
    with pytest.raises(TooManyMessages) as messages:
        parse_chat_request(_body(4), headers={}, limits=limits)
    with pytest.raises(TooManyTools) as tools:
        parse_chat_request(_body(1, 3), headers={}, limits=limits)

    assert (messages.value.status, messages.value.code, messages.value.param) == (
        400,
        "too_many_messages",
        "messages",
    )
    assert (tools.value.status, tools.value.code, tools.value.param) == (400, "too_many_tools", "tools")


def test_zero_means_no_request_limit() -> None:
    parse_chat_request(_body(50, 50), headers={}, limits=RequestLimits(max_messages=0, max_tools=0))
