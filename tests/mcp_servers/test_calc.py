"""The calc server, in process: arithmetic, refusals and limits."""

from __future__ import annotations

import pytest
from mcp import Client

from mcp_servers.calc import MAX_EXPRESSION_LENGTH, build_server
from tests.mcp_servers._helpers import text_of


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("7 / 2", 3.5),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-(-3)", 3),
        ("+4 - -4", 8),
        ("-2 ** 2", -4),
        ("1_000 + 0x10 + 2.5e1", 1041.0),
        ("10 ** 1000 // 10 ** 999", 10),
    ],
)
async def test_evaluate_computes_arithmetic(expression: str, expected: float) -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("evaluate", {"expression": expression})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"result": expected}


async def test_integers_stay_exact_up_to_about_ten_to_the_thousand() -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("evaluate", {"expression": "10 ** 1000 + 1"})
    assert result.structured_content == {"result": 10**1000 + 1}


@pytest.mark.parametrize(
    ("expression", "mentions"),
    [
        ("__import__('os')", "Call"),
        ("(1).real", "Attribute"),
        ("x + 1", "Name"),
        ("[1][0]", "Subscript"),
        ("'a' * 3", "'a'"),
        ("True + 1", "True"),
        ("1 if 1 else 2", "IfExp"),
        ("1 < 2", "Compare"),
        ("lambda: 1", "Lambda"),
        ("1 +", "invalid expression"),
        ("1 << 4", "LShift"),
    ],
)
async def test_evaluate_refuses_anything_but_arithmetic(expression: str, mentions: str) -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("evaluate", {"expression": expression})
    assert result.is_error
    assert mentions in text_of(result)


@pytest.mark.parametrize(
    ("expression", "mentions"),
    [
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("2 ** 1001", "exponent"),
        ("2 ** -1001", "exponent"),
        ("99 ** 1000", "bits"),
        ("(10 ** 1000) * (10 ** 1000)", "bits"),
        ("2.0 ** 1000 * 2.0 ** 1000", "finite"),
        ("(10 ** 900) ** 0.5", "too large for a float"),
        ("(-8) ** 0.5", "complex"),
        ("-" * 500 + "1", "nested too deeply"),
    ],
)
async def test_evaluate_enforces_limits(expression: str, mentions: str) -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool("evaluate", {"expression": expression})
    assert result.is_error
    assert mentions in text_of(result)


async def test_evaluate_refuses_overlong_expressions() -> None:
    expression = "1+" * (MAX_EXPRESSION_LENGTH // 2) + "1"
    async with Client(build_server()) as client:
        result = await client.call_tool("evaluate", {"expression": expression})
    assert result.is_error
    assert str(MAX_EXPRESSION_LENGTH) in text_of(result)


async def test_evaluate_is_read_only_and_idempotent() -> None:
    async with Client(build_server()) as client:
        (tool,) = (await client.list_tools()).tools
    assert tool.name == "evaluate"
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is True
    assert tool.annotations.idempotent_hint is True
    assert tool.annotations.destructive_hint is False
    assert tool.annotations.open_world_hint is False
