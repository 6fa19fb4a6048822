"""`calc`: a safe arithmetic evaluator (no `eval`/`exec`).

Tool `evaluate(expression) -> {"result": int | float}` (read-only, idempotent, closed-world).

The expression is parsed with `ast.parse(mode="eval")` and only these nodes are evaluated:
int/float literals (Python syntax, so `1_000`, `0x1f` and `2.5e3` work), binary `+ - * / // % **`,
unary `+ -` and parentheses. Anything else (names, calls, attributes, subscripts, strings, bools,
comparisons, ...) is refused. Limits, each refused with `ToolError`:

- `MAX_EXPRESSION_LENGTH` characters and `MAX_DEPTH` levels of nesting;
- exponents with magnitude above `MAX_EXPONENT`;
- integers wider than `MAX_INT_BITS` bits (about 10**1000), checked before a power is computed;
- division or modulo by zero, float overflow, non-finite or complex results.

Run: `python -m mcp_servers.calc --transport stdio|streamable-http|sse [--host H] [--port N]`.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from mcp_servers._run import run_cli

__all__ = ["MAX_DEPTH", "MAX_EXPONENT", "MAX_EXPRESSION_LENGTH", "MAX_INT_BITS", "build_server", "evaluate"]

MAX_EXPRESSION_LENGTH = 1000
MAX_DEPTH = 100
MAX_EXPONENT = 1000
MAX_INT_BITS = 3322  # 2**3322 is about 10**1000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic `expression` under the module's grammar and limits.

    Raises:
        ToolError: for syntax outside the grammar, a violated limit, division by zero or overflow.
    """
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ToolError(f"expression is {len(expression)} characters; the limit is {MAX_EXPRESSION_LENGTH}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"invalid expression: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL characters
        raise ToolError(f"invalid expression: {exc}") from None
    except (RecursionError, MemoryError):
        raise ToolError(f"expression is nested too deeply (limit {MAX_DEPTH})") from None
    return _eval(tree.body, 0)


def _eval(node: ast.expr, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise ToolError(f"expression is nested too deeply (limit {MAX_DEPTH})")
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ToolError(f"unsupported literal {node.value!r}: only int and float numbers are allowed")
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _checked(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("result is too large for a float") from None
    construct = type(node.op if isinstance(node, ast.BinOp | ast.UnaryOp) else node).__name__
    raise ToolError(f"unsupported syntax: {construct} (allowed: numbers, + - * / // % **, parentheses)")


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {exponent} is out of range (magnitude limit {MAX_EXPONENT})")
    # |base| >= 2**(bit_length - 1), so the result needs at least (bit_length - 1) * exponent bits.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise ToolError(f"result would exceed {MAX_INT_BITS} bits (about 10**1000)")


def _checked(value: object) -> Number:
    if isinstance(value, complex):
        raise ToolError("result is complex (e.g. a fractional power of a negative number)")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise ToolError(f"result exceeds {MAX_INT_BITS} bits (about 10**1000)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolError("result is not a finite number")
        return value
    raise ToolError(f"unexpected value of type {type(value).__name__}")


def build_server() -> MCPServer[Any]:
    """Build the calc server with its single `evaluate` tool."""
    server: MCPServer[Any] = MCPServer("calc", instructions="Exact integer and float arithmetic.")

    @server.tool(
        name="evaluate",
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    def evaluate_tool(expression: str) -> Number:
        """Evaluate an arithmetic expression: numbers, + - * / // % **, unary +/- and parentheses.

        Integers are exact (up to about 10**1000); `/` always gives a float.
        """
        return evaluate(expression)

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see `mcp_servers._run` for the contract."""
    run_cli(lambda _args: build_server(), name="calc", argv=argv)


if __name__ == "__main__":
    main()
