"""Budgets of one tool loop and the ledger that enforces them (DESIGN 4.2).

After each model reply the ledger decides whether the loop goes on (`LoopLedger.decide`): a reply asking
for no gateway-owned call ends it (``completed``), one that mixes client and gateway calls too
(``mixed_tool_calls``). An iteration is one model call. Before a round of MCP calls is executed the
ledger checks, in this order:

- ``deadline``: ``deadline_secs`` have passed since the loop started (injected clock);
- ``max_iterations``: the reply asking for the round came from model call number ``max_iterations``
  (there would be no model call left to read the results);
- ``max_tool_calls``: executing the whole round would exceed ``max_tool_calls`` executed calls;
- ``repeated_call``: a call (same tool, same canonical-JSON arguments) is asked for the
  ``max_repeated_calls``-th time in this loop.

A stop executes nothing of that round. The ledger also sums usage and records executed calls for the
``smg`` extension object.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from smg.routing.accumulator import AccumulatedCall
from smg.routing.tools import ToolPlan

StopReason = Literal[
    "completed", "mixed_tool_calls", "max_iterations", "max_tool_calls", "deadline", "repeated_call"
]
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


@dataclass(frozen=True)
class LoopBudgets:
    """Per-request limits of the tool loop. Raises ValueError on construction for values out of range."""

    max_iterations: int = 10
    max_tool_calls: int = 64
    deadline_secs: float = 300.0
    max_repeated_calls: int = 3

    def __post_init__(self) -> None:
        if self.max_iterations < 1 or self.max_tool_calls < 1 or self.deadline_secs <= 0:
            raise ValueError("loop budgets must be positive")
        if self.max_repeated_calls < 2:
            raise ValueError("max_repeated_calls must be at least 2 (1 would refuse every call)")


@dataclass(frozen=True)
class CallRecord:
    """One MCP call the gateway executed (or answered itself, e.g. invalid arguments)."""

    server: str
    tool: str
    status: str
    duration_ms: int
    iteration: int
    attempts: int = 1  # more than 1: the call was sent again (a retry-safe tool whose server was lost)

    def as_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "tool": self.tool,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "iteration": self.iteration,
        }


@dataclass
class LoopLedger:
    """Mutable state of one loop: iterations, executed calls, repeats, usage, records."""

    budgets: LoopBudgets
    clock: Callable[[], float]
    started: float = 0.0
    iterations: int = 0
    executed: int = 0
    usage: dict[str, int] | None = None
    records: list[CallRecord] = field(default_factory=list)
    _seen: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def add_usage(self, usage: Any) -> None:
        """Add one reply's ``usage`` object (ignored when absent or ill-shaped)."""
        if not isinstance(usage, dict):
            return
        total = self.usage if self.usage is not None else dict.fromkeys(_USAGE_KEYS, 0)
        for key in _USAGE_KEYS:
            value = usage.get(key)
            if isinstance(value, int):
                total[key] += value
        self.usage = total

    def decide(
        self, calls: Sequence[AccumulatedCall], plan: ToolPlan
    ) -> tuple[StopReason | None, list[AccumulatedCall]]:
        """How a model reply ends or continues the loop: (stop reason or None to run the round, the
        client-owned calls). No gateway-owned call: ``completed``; client and gateway calls mixed:
        ``mixed_tool_calls``; otherwise a budget may stop the round before it runs (`check_round`)."""
        client = [c for c in calls if plan.owner(c.name) == "client"]
        if len(client) == len(calls):
            return "completed", client
        if client:
            return "mixed_tool_calls", client
        return self.check_round([signature(c) for c in calls]), client

    def check_round(self, signatures: Sequence[tuple[str, str]]) -> StopReason | None:
        """The budget a round of calls (``(tool, canonical arguments)`` each) would break, or None; when
        None the round counts as executed."""
        budgets = self.budgets
        if self.clock() - self.started >= budgets.deadline_secs:
            return "deadline"
        if self.iterations >= budgets.max_iterations:
            return "max_iterations"
        if self.executed + len(signatures) > budgets.max_tool_calls:
            return "max_tool_calls"
        seen = self._seen.copy()
        seen.update(signatures)
        if any(seen[s] >= budgets.max_repeated_calls for s in signatures):
            return "repeated_call"
        self._seen = seen
        self.executed += len(signatures)
        return None

    def extension(self, reason: StopReason) -> dict[str, Any]:
        """The ``smg`` extension object of the final response."""
        return {
            "tool_calls": [r.as_json() for r in self.records],
            "iterations": self.iterations,
            "stop_reason": reason,
        }


def parse_arguments(text: str) -> dict[str, Any] | None:
    """A call's arguments as a JSON object (empty text is ``{}``); None when they are not one."""
    if not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def signature(call: AccumulatedCall) -> tuple[str, str]:
    """(name, canonical JSON arguments) of a call: equal for calls that would do the same thing."""
    arguments = parse_arguments(call.arguments)
    if arguments is None:
        return call.name, call.arguments
    return call.name, orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS).decode()


def stop_notice(reason: StopReason, ledger: LoopLedger) -> str:
    """The sentence the final answer carries when a budget ended the loop."""
    budgets = ledger.budgets
    detail = {
        "deadline": f"deadline of {budgets.deadline_secs:g}s passed",
        "max_iterations": f"max_iterations ({budgets.max_iterations}) reached",
        "max_tool_calls": f"max_tool_calls ({budgets.max_tool_calls}) would be exceeded",
        "repeated_call": f"the same tool call was requested {budgets.max_repeated_calls} times",
    }.get(reason, reason)
    return f"[smg] tool loop stopped: {detail} after {ledger.iterations} rounds"
