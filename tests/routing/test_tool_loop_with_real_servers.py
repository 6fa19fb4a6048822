"""The tool loop through the whole app: real MCP servers (HTTP, SSE, stdio) on 127.0.0.1, the scripted
worker, and the official openai client."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import openai
import pytest

from smg.mcp.registry.naming import exposed_tool_name
from smg.settings import McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings

MCP_READY = "MCP_SERVER_READY"


@pytest.fixture(scope="module")
def mcp_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """clock and faults over streamable HTTP, notes over SSE, started once for this module."""
    procs = {}
    try:
        for name, transport in (
            ("clock", "streamable-http"),
            ("faults", "streamable-http"),
            ("notes", "sse"),
        ):
            args = [sys.executable, "-m", f"mcp_servers.{name}", "--transport", transport, "--port", "0"]
            if name == "notes":
                args += ["--db", str(tmp_path_factory.mktemp("notes") / "notes.db")]
            procs[name] = spawn(args)
        yield {name: wait_for_line(proc, MCP_READY) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            stop(proc)


@pytest.fixture
async def gw(
    worker: RunningWorker, start_gateway: Callable[..., Any], mcp_urls: dict[str, str], stack: AsyncExitStack
) -> AsyncIterator[RunningGateway]:
    gateway: RunningGateway = await start_gateway(
        make_settings((worker.url,), mcp=McpSettings(max_iterations=4, max_tool_calls=12))
    )
    servers = [
        {"name": "clock", "transport": "streamable-http", "url": mcp_urls["clock"]},
        {"name": "faults", "transport": "streamable-http", "url": mcp_urls["faults"], "tool_timeout_secs": 2},
        {"name": "notes", "transport": "sse", "url": mcp_urls["notes"]},
        {"name": "calc", "transport": "stdio", "command": sys.executable,
         "args": ["-m", "mcp_servers.calc", "--transport", "stdio"]},
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as admin:
        for server in servers:
            resp = await admin.post("/mcp/servers", json=server)
            assert resp.status_code == 201, resp.text
    yield gateway


def _client(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def _mcp(*servers: str) -> list[dict[str, Any]]:
    return [{"type": "mcp", "server_label": s, "require_approval": "never"} for s in servers]


SCRIPT = "\n".join(
    [
        'CALL calc__evaluate {"expression": "6*7"}',
        "CALL clock__convert "
        '{"time": "2026-01-01T12:00:00", "from_timezone": "UTC", "to_timezone": "Asia/Tokyo"}',
        "NEXT",
        'CALL notes__add {"text": "the answer is 42"}',
    ]
)


async def test_non_stream_loop_runs_every_round_and_returns_one_answer(gw: RunningGateway) -> None:
    async with _client(gw) as client:
        resp = await client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": SCRIPT}],
            tools=_mcp("calc", "clock", "notes"),  # type: ignore[arg-type]  # the mcp tool type is smg's
        )
    content = resp.choices[0].message.content or ""
    assert content.startswith("tool results: ")
    assert "42" in content and "21:00:00" in content and "the answer is 42" in content
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].finish_reason == "stop"
    extension = (resp.model_extra or {})["smg"]
    assert extension["stop_reason"] == "completed"
    assert [(c["server"], c["tool"], c["status"]) for c in extension["tool_calls"]] == [
        ("calc", "evaluate", "ok"),
        ("clock", "convert", "ok"),
        ("notes", "add", "ok"),
    ]
    assert extension["iterations"] == 3
    assert resp.usage is not None
    single = len(SCRIPT.split())
    assert resp.usage.prompt_tokens > 2 * single  # three model calls, summed


async def test_stream_loop_is_one_clean_stream_without_mcp_tool_calls(gw: RunningGateway) -> None:
    async with _client(gw) as client:
        stream = await client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": SCRIPT}],
            tools=_mcp("calc", "clock", "notes"),  # type: ignore[arg-type]  # the mcp tool type is smg's
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert len({c.id for c in chunks}) == 1
    assert all(not (ch.delta.tool_calls) for c in chunks for ch in c.choices)
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"]
    content = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert content.startswith("tool results: ") and "42" in content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


async def test_four_calls_of_one_round_run_concurrently(gw: RunningGateway) -> None:
    script = "\n".join(f'CALL faults__sleep {{"seconds": 0.5, "label": "s{i}"}}' for i in range(4))
    async with _client(gw) as client:
        resp = await client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": script}],
            tools=_mcp("faults"),  # type: ignore[arg-type]  # the mcp tool type is smg's
        )
    content = resp.choices[0].message.content or ""
    records = [json.loads(part) for part in content.removeprefix("tool results: ").split(" | ")]
    assert sorted(r["label"] for r in records) == ["s0", "s1", "s2", "s3"]
    assert max(r["start"] for r in records) < min(r["end"] for r in records)  # all four overlapped


async def test_a_mixed_turn_returns_only_the_clients_calls_and_runs_nothing(gw: RunningGateway) -> None:
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    script = 'CALL get_weather {"city": "Paris"}\nCALL calc__evaluate {"expression": "1+1"}'
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http:
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "mock-model", "messages": [{"role": "user", "content": script}],
                  "tools": [weather, *_mcp("calc")]},
        )  # fmt: skip
    assert resp.status_code == 200
    body = resp.json()
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["smg"]["stop_reason"] == "mixed_tool_calls"
    assert body["smg"]["tool_calls"] == []


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ('FOREVER calc__evaluate {"expression": "{n}+1"}', "max_iterations"),
        ('FOREVER calc__evaluate {"expression": "2+2"}', "repeated_call"),
        (
            "\n".join(f'FOREVER calc__evaluate {{"expression": "{{n}}*{i}"}}' for i in range(5)),
            "max_tool_calls",
        ),
    ],
    ids=["max_iterations", "repeated_call", "max_tool_calls"],
)
async def test_an_endless_script_stops_on_its_budget_with_a_readable_reason(
    gw: RunningGateway, script: str, reason: str
) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http:
        resp = await http.post(
            "/v1/chat/completions",
            json={
                "model": "mock-model",
                "messages": [{"role": "user", "content": script}],
                "tools": _mcp("calc"),
            },
        )
    assert resp.status_code == 200
    body = resp.json()
    assert body["smg"]["stop_reason"] == reason
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "[smg] tool loop stopped" in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("script", "status", "needle"),
    [
        ('CALL calc__evaluate {"expression": "1/0"}', "error", "division"),
        ('CALL faults__sleep {"seconds": 30}', "timeout", "timeout"),
        ("RAW calc__evaluate {not json", "invalid_arguments", "json"),
    ],
    ids=["tool_error", "tool_timeout", "invalid_json_arguments"],
)
async def test_tool_failures_come_back_as_readable_tool_results(
    gw: RunningGateway, script: str, status: str, needle: str
) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http:
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "mock-model", "messages": [{"role": "user", "content": script}],
                  "tools": _mcp("calc", "faults")},
        )  # fmt: skip
    assert resp.status_code == 200
    body = resp.json()
    assert [c["status"] for c in body["smg"]["tool_calls"]] == [status]
    assert needle in body["choices"][0]["message"]["content"].lower()
    assert body["smg"]["stop_reason"] == "completed"


LONG_TOOL = "this_tool_name_is_deliberately_seventy_characters_long_for_testing_xxx"


async def test_a_seventy_character_tool_is_offered_shortened_and_called_through_the_loop(
    gw: RunningGateway,
) -> None:
    exposed = exposed_tool_name("faults", LONG_TOOL)
    assert len(exposed) <= 64
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http:
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "mock-model", "tools": _mcp("faults"),
                  "messages": [{"role": "user", "content": f'CALL {exposed} {{"text": "long names work"}}'}]},
        )  # fmt: skip
        offered = (await http.get(gw.url.replace("/v1", "") + "/mcp/servers/faults")).json()["tools"]
    assert resp.status_code == 200
    body = resp.json()
    assert [(c["tool"], c["status"]) for c in body["smg"]["tool_calls"]] == [(LONG_TOOL, "ok")]
    assert "long names work" in body["choices"][0]["message"]["content"]
    assert exposed in {t["exposed_name"] for t in offered}
