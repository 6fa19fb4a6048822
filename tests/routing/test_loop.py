"""The non-streaming tool loop, against the real scripted worker and a fake MCP runtime."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from smg.errors import UpstreamStatusError
from smg.routing.budgets import LoopBudgets
from smg.routing.loop import ToolLoop
from smg.routing.metering import Generation
from tests.routing.conftest import LOOKUP, MATH, Harness, ManualClock, plan_of, request

TWO_ROUNDS = 'CALL clock__now {}\nCALL math__add {"a": 1, "b": 2}\nNEXT\nCALL clock__echo {"x": 1}'


async def run(loop: ToolLoop, text: str, **extra: Any) -> dict[str, Any]:
    req = request(text, **extra)
    done = await loop.complete(req, await plan_of(loop, req))
    assert done.status == 200
    reply: dict[str, Any] = orjson.loads(done.body)
    return reply


async def test_two_rounds_with_parallel_calls_end_in_one_answer(harness: Harness) -> None:
    reply = await run(harness.loop(), TWO_ROUNDS)
    choice = reply["choices"][0]
    assert choice["message"]["content"] == 'tool results: 12:00 | 3 | {"x":1}'
    assert choice["finish_reason"] == "stop"
    assert reply["smg"]["stop_reason"] == "completed"
    assert reply["smg"]["iterations"] == 3
    assert [(c["server"], c["tool"], c["status"], c["iteration"]) for c in reply["smg"]["tool_calls"]] == [
        ("clock", "now", "ok", 1),
        ("math", "add", "ok", 1),
        ("clock", "echo", "ok", 2),
    ]
    now, add, echo = harness.runtime.calls
    assert now.start < add.end and add.start < now.end  # round 1 ran concurrently
    assert max(now.end, add.end) < echo.start  # round 2 after round 1
    assert add.arguments == {"a": 1, "b": 2}


async def test_usage_is_summed_and_the_first_id_is_kept(harness: Harness) -> None:
    reply = await run(harness.loop(), TWO_ROUNDS)
    usage = reply["usage"]
    final_words = len(reply["choices"][0]["message"]["content"].split())
    assert usage["completion_tokens"] == 2 + 1 + final_words  # 1 per tool call, then the answer's words
    single = await run(harness.loop(), "hello")  # one model call: the prompt is counted once
    assert usage["prompt_tokens"] > 3 * single["usage"]["prompt_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert reply["id"].startswith("chatcmpl") and isinstance(reply["created"], int)


async def test_model_sees_function_tools_and_the_history_of_the_loop(harness: Harness) -> None:
    await run(harness.loop(), 'CALL clock__now {}\nNEXT\nCALL math__add {"a": 2, "b": 2}')
    async with httpx.AsyncClient() as http:
        recorded = (await http.get(f"{harness.worker.url}/_smg/requests")).json()
    last = recorded[-1]["body"]
    assert {t["type"] for t in last["tools"]} == {"function"}
    assert last["stream"] is False
    roles = [m["role"] for m in last["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    first_call = last["messages"][1]["tool_calls"][0]
    assert first_call["function"] == {"name": "clock__now", "arguments": "{}"}
    assert last["messages"][2] == {"role": "tool", "tool_call_id": first_call["id"], "content": "12:00"}


async def test_mixed_turn_returns_only_client_calls_and_runs_nothing(harness: Harness) -> None:
    reply = await run(
        harness.loop(),
        'CALL clock__now {}\nCALL lookup {"q": 1}',
        tools=[{"type": "mcp", "server_label": "clock"}, LOOKUP],
    )
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["lookup"]
    assert reply["smg"] == {"tool_calls": [], "iterations": 1, "stop_reason": "mixed_tool_calls"}
    assert harness.runtime.calls == []


async def test_only_client_calls_pass_through_as_completed(harness: Harness) -> None:
    reply = await run(
        harness.loop(), "CALL lookup {}", tools=[{"type": "mcp", "server_label": "clock"}, LOOKUP]
    )
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    assert reply["smg"]["stop_reason"] == "completed"


async def test_max_iterations_ends_with_an_answer_saying_why(harness: Harness) -> None:
    reply = await run(harness.loop(max_iterations=3), 'FOREVER clock__echo {"n": {n}}')
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool loop stopped: max_iterations" in choice["message"]["content"]
    assert "tool_calls" not in choice["message"]
    assert reply["smg"]["stop_reason"] == "max_iterations"
    assert [c.arguments for c in harness.runtime.calls] == [{"n": 1}, {"n": 2}]


async def test_max_tool_calls_stops_before_a_round_that_would_exceed_it(harness: Harness) -> None:
    script = 'FOREVER clock__echo {"n": {n}}\nFOREVER math__add {"a": {n}}'
    reply = await run(harness.loop(max_tool_calls=5), script)
    assert reply["smg"]["stop_reason"] == "max_tool_calls"
    assert len(harness.runtime.calls) == 4
    assert "max_tool_calls" in reply["choices"][0]["message"]["content"]


async def test_repeated_identical_calls_are_cut_off(harness: Harness) -> None:
    reply = await run(harness.loop(), 'FOREVER clock__echo {"b": 1, "a": 2}')
    assert reply["smg"]["stop_reason"] == "repeated_call"
    assert len(harness.runtime.calls) == LoopBudgets().max_repeated_calls - 1
    assert reply["choices"][0]["finish_reason"] == "stop"


async def test_deadline_uses_the_injected_clock(harness: Harness) -> None:
    clock = ManualClock()

    def advance() -> None:
        clock.now += 200

    harness.runtime.advance = advance
    reply = await run(harness.loop(deadline_secs=300, clock=clock), 'FOREVER clock__echo {"n": {n}}')
    assert reply["smg"]["stop_reason"] == "deadline"
    assert len(harness.runtime.calls) == 2
    assert "deadline" in reply["choices"][0]["message"]["content"]


async def test_tool_errors_and_timeouts_become_tool_messages_and_a_200(harness: Harness) -> None:
    reply = await run(harness.loop(), "CALL math__fail {}\nCALL math__slow {}")
    content = reply["choices"][0]["message"]["content"]
    assert content == "tool results: error (error): boom | error (timeout): tool call timed out after 5s"
    assert [c["status"] for c in reply["smg"]["tool_calls"]] == ["error", "timeout"]


async def test_invalid_json_arguments_are_answered_without_calling_the_server(harness: Harness) -> None:
    reply = await run(harness.loop(), "RAW clock__echo {not json")
    content = reply["choices"][0]["message"]["content"]
    assert content.startswith("tool results: error: the arguments of clock__echo must be a JSON object")
    assert reply["smg"]["tool_calls"][0]["status"] == "invalid_arguments"
    assert harness.runtime.calls == []


async def test_a_worker_error_status_propagates(harness: Harness) -> None:
    harness.worker.faults.status = 500
    req = request("CALL clock__now {}", tools=[MATH])
    loop = harness.loop()
    with pytest.raises(UpstreamStatusError) as info:
        await loop.complete(req, await plan_of(loop, req))
    assert info.value.upstream_status == 500


async def test_the_report_gets_the_iterations_and_the_stop_reason(harness: Harness) -> None:
    loop = harness.loop(max_iterations=2)
    req = request(TWO_ROUNDS)
    report = Generation()

    done = await loop.complete(req, await plan_of(loop, req), report=report)

    assert done.status == 200
    assert orjson.loads(done.body)["smg"]["iterations"] == report.iterations == 2
    assert report.stop_reason == "max_iterations"
