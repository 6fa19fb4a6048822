"""The streaming tool loop: one well-formed chunk stream over several model calls."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import orjson

from smg.mcp.types import ToolStatus
from smg.routing.loop import ToolLoop
from smg.routing.metering import Generation
from tests.routing.conftest import LOOKUP, Harness, plan_of, request

TWO_ROUNDS = 'CALL clock__now {}\nCALL math__add {"a": 1, "b": 2}\nNEXT\nCALL clock__echo {"x": 1}'


@dataclass
class Parsed:
    chunks: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    done: bool = False
    after_done: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c["choices"])

    @property
    def finish_reasons(self) -> list[str]:
        return [
            c["choices"][0]["finish_reason"]
            for c in self.chunks
            if c["choices"] and c["choices"][0]["finish_reason"]
        ]


async def stream(loop: ToolLoop, text: str, **extra: Any) -> Parsed:
    req = request(text, stream=True, **extra)
    body = b"".join(
        [piece async for piece in (await loop.open_stream(req, await plan_of(loop, req))).events()]
    )
    parsed = Parsed()
    assert body.endswith(b"\n\n")
    for event in body.decode().split("\n\n")[:-1]:
        if parsed.done:
            parsed.after_done.append(event)
        elif event.startswith(":"):
            parsed.comments.append(event)
        elif event == "data: [DONE]":
            parsed.done = True
        else:
            assert event.startswith("data: ") and "\n" not in event
            parsed.chunks.append(orjson.loads(event[6:]))
    return parsed


async def test_two_rounds_stream_as_one_well_formed_stream(harness: Harness) -> None:
    parsed = await stream(harness.loop(), TWO_ROUNDS, stream_options={"include_usage": True})
    assert parsed.done and not parsed.after_done
    chunks = parsed.chunks
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    roles = [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"]]
    assert roles[0] == "assistant" and roles.count("assistant") == 1
    assert not any("tool_calls" in c["choices"][0]["delta"] for c in chunks if c["choices"])
    assert parsed.content == 'tool results: 12:00 | 3 | {"x":1}'
    assert parsed.finish_reasons == ["stop"]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    final_words = len(parsed.content.split())
    assert usage["completion_tokens"] == 2 + 1 + final_words
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert sum(1 for c in chunks if "usage" in c) == 1
    assert usage_chunk["smg"]["stop_reason"] == "completed"
    assert [c["tool"] for c in usage_chunk["smg"]["tool_calls"]] == ["now", "add", "echo"]
    assert parsed.comments[1].startswith(": smg tool_call server=clock tool=now status=ok duration_ms=3")
    now, add, _ = harness.runtime.calls
    assert now.start < add.end and add.start < now.end


async def test_without_include_usage_the_final_chunk_carries_finish_reason_and_smg(harness: Harness) -> None:
    parsed = await stream(harness.loop(), TWO_ROUNDS)
    assert not any("usage" in c for c in parsed.chunks)
    last = parsed.chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["smg"]["iterations"] == 3
    async with httpx.AsyncClient() as http:
        recorded = (await http.get(f"{harness.worker.url}/_smg/requests")).json()
    assert all(r["body"]["stream_options"] == {"include_usage": True} for r in recorded)


async def test_mixed_turn_streams_client_calls_only(harness: Harness) -> None:
    parsed = await stream(
        harness.loop(),
        'CALL clock__now {}\nCALL lookup {"q": 1}',
        tools=[{"type": "mcp", "server_label": "clock"}, LOOKUP],
    )
    calls = [d for c in parsed.chunks for d in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [(d["index"], d["function"]["name"], d["function"]["arguments"]) for d in calls] == [
        (0, "lookup", '{"q": 1}')
    ]
    assert parsed.finish_reasons == ["tool_calls"]
    assert parsed.chunks[-1]["smg"]["stop_reason"] == "mixed_tool_calls"
    assert harness.runtime.calls == []


async def test_budget_stop_streams_the_reason_then_stop(harness: Harness) -> None:
    parsed = await stream(harness.loop(max_iterations=2), 'FOREVER clock__echo {"n": {n}}')
    assert "[smg] tool loop stopped: max_iterations (2) reached after 2 rounds" in parsed.content
    assert parsed.finish_reasons == ["stop"]
    assert parsed.chunks[-1]["smg"]["stop_reason"] == "max_iterations"
    assert parsed.done


async def test_a_stream_broken_mid_round_ends_with_an_error_event_and_done(harness: Harness) -> None:
    harness.worker.faults.drop_after_chunks = 3
    parsed = await stream(harness.loop(), TWO_ROUNDS)
    assert parsed.done
    assert "error" in parsed.chunks[-1]
    assert parsed.chunks[-1]["error"]["code"].startswith("upstream")


async def test_a_worker_failing_a_later_round_ends_with_an_error_event(harness: Harness) -> None:
    harness.worker.faults.update({"fail_every": 2, "fail_status": 500})
    parsed = await stream(harness.loop(), TWO_ROUNDS)
    assert parsed.done
    assert parsed.chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert parsed.chunks[-1]["error"]["code"] == "upstream_error"
    assert [c.tool for c in harness.runtime.calls] == ["now", "add"]


async def test_the_openai_client_parses_the_stream(harness: Harness) -> None:
    loop = harness.loop()
    req = request(TWO_ROUNDS, stream=True, stream_options={"include_usage": True})
    body = b"".join(
        [piece async for piece in (await loop.open_stream(req, await plan_of(loop, req))).events()]
    )

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport) as http:
        client = openai.AsyncOpenAI(
            api_key="x",
            base_url="http://smg.test/v1",
            http_client=http,  # type: ignore[arg-type]  # openai 3.x names httpx2's client; httpx's works
        )
        events = await client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in events]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'tool results: 12:00 | 3 | {"x":1}'
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


async def test_a_client_going_away_releases_the_upstream(harness: Harness) -> None:
    loop = harness.loop()
    req = request(TWO_ROUNDS, stream=True)
    events = (await loop.open_stream(req, await plan_of(loop, req))).events()
    assert isinstance(events, AsyncGenerator)
    await anext(events)
    await events.aclose()
    assert [w.in_flight for w in harness.registry] == [0]


@dataclass
class _RecordedSpan:
    tracer: RecordingTracer
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    recording: bool = True

    def set(self, key: str, value: str | int | bool) -> None:
        self.attributes[key] = value

    def fail(self, error_type: str) -> None:
        self.tracer.events.append(f"fail {self.name} {error_type}")

    @contextmanager
    def activate(self) -> Iterator[None]:
        self.tracer.active.append(self.name)
        try:
            yield
        finally:
            self.tracer.active.pop()

    def end(self) -> None:
        self.tracer.events.append(f"end {self.name}")


@dataclass
class RecordingTracer:
    """A Tracer (its loop hooks) that records which iteration span is current when each tool call starts."""

    events: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    spans: list[_RecordedSpan] = field(default_factory=list)

    def start_iteration(self, model: str, iteration: int) -> _RecordedSpan:
        span = _RecordedSpan(self, f"iteration {iteration}")
        self.events.append(f"start {span.name} under {self.active[-1] if self.active else '-'}")
        self.spans.append(span)
        return span

    @contextmanager
    def tool_call(self, server: str, tool: str, *, call_id: str) -> Iterator[_RecordedSpan]:
        self.events.append(f"{tool} under {self.active[-1]}")
        yield _RecordedSpan(self, tool)


async def test_each_round_is_an_iteration_span_current_for_its_tool_calls_and_the_report_is_filled(
    harness: Harness,
) -> None:
    tracer = RecordingTracer()
    route = _RecordedSpan(tracer, "route")
    loop = ToolLoop(harness.dispatcher, harness.runtime, tracer=tracer)
    req = request(TWO_ROUNDS, stream=True, stream_options={"include_usage": True})
    report = Generation()
    last_tool_ran: list[float] = []
    echo = harness.runtime.handlers["clock"]["echo"]

    async def timed_echo(args: dict[str, Any]) -> tuple[ToolStatus, str]:
        last_tool_ran.append(time.perf_counter())
        return await echo(args)

    harness.runtime.handlers["clock"]["echo"] = timed_echo

    events = (await loop.open_stream(req, await plan_of(loop, req), report=report, route=route)).events()
    body = b"".join([piece async for piece in events])

    assert tracer.events == [
        "start iteration 1 under route",
        "now under iteration 1",
        "add under iteration 1",
        "end iteration 1",
        "start iteration 2 under route",
        "echo under iteration 2",
        "end iteration 2",
        "start iteration 3 under route",
        "end iteration 3",
    ]
    chunks = [orjson.loads(e[6:]) for e in body.decode().split("\n\n") if e.startswith("data: {")]
    usage = chunks[-1]["usage"]
    per_round = [span.attributes["gen_ai.usage.output_tokens"] for span in tracer.spans]
    assert sum(per_round) == usage["completion_tokens"]
    assert report.tokens == (usage["prompt_tokens"], usage["completion_tokens"])
    assert (report.iterations, report.stop_reason, report.error) == (3, "completed", None)
    assert report.response_id == chunks[0]["id"] and report.response_model == "mock-model"
    assert report.worker == harness.worker.url
    assert report.tpot is not None and report.tpot >= 0
    # the first token the client got is the final answer's: the role chunk and tool rounds came before
    assert report.first_token is not None and report.first_token > last_tool_ran[0]


async def test_a_failed_later_round_fails_its_iteration_span_and_reports_the_error(harness: Harness) -> None:
    tracer = RecordingTracer()
    loop = ToolLoop(harness.dispatcher, harness.runtime, tracer=tracer)
    req = request(TWO_ROUNDS, stream=True)
    report = Generation()
    harness.worker.faults.update({"fail_every": 2, "fail_status": 500})  # the second round's call fails

    events = (await loop.open_stream(req, await plan_of(loop, req), report=report)).events()
    body = b"".join([piece async for piece in events])

    assert b'"error"' in body and body.endswith(b"data: [DONE]\n\n")
    assert tracer.events[-2:] == ["fail iteration 2 upstream_error", "end iteration 2"]
    assert report.error == "upstream_error" and report.first_token is None
