"""openai-agents, unmodified and with its default model settings (the Responses API), against a real
gateway process: the scripted worker and MCP servers (clock over streamable HTTP, notes over SSE) as
processes on 127.0.0.1, each stopped by its PID. An `Agent` with a `function_tool` runs the function
itself; an `Agent` with `HostedMCPTool` has the gateway run the MCP calls, with and without approval,
streamed and not. Tracing export is off, so nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import (
    Agent,
    HostedMCPTool,
    MCPToolApprovalFunctionResult,
    MCPToolApprovalRequest,
    ModelBehaviorError,
    OpenAIResponsesModel,
    RawResponsesStreamEvent,
    RunItemStreamEvent,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.items import MCPListToolsItem, ToolCallItem

from smg.responses.approval import denial_text
from smg.testing.processes import spawn, wait_for_line
from tests._procs import Procs

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "responses.md"

CONVERT = (
    'CALL clock__convert {"time": "2026-01-01T12:00:00", "from_timezone": "UTC", "to_timezone": "Asia/Tokyo"}'
)


@dataclass(frozen=True)
class Stack:
    gateway: str
    notes_db: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A scripted worker, clock and notes MCP servers and a gateway with both registered, as processes
    started once for this module and stopped by PID."""
    tmp = tmp_path_factory.mktemp("agents")
    procs = Procs()
    try:
        _, worker = procs.worker()
        urls = {}
        for name, transport in (("clock", "streamable-http"), ("notes", "sse")):
            args = [sys.executable, "-m", f"mcp_servers.{name}", "--transport", transport, "--port", "0"]
            if name == "notes":
                args += ["--db", str(tmp / "notes.db")]
            proc = spawn(args)
            procs.started.append(proc)
            urls[name] = (transport, wait_for_line(proc, "MCP_SERVER_READY"))
        gateway = procs.gateway("--worker-urls", worker, "--mcp-registry", str(tmp / "smg.db"))
        for name, (transport, url) in urls.items():
            server = {"name": name, "transport": transport, "url": url}
            resp = httpx.post(gateway.url + "/mcp/servers", json=server, timeout=60)
            assert resp.status_code == 201, resp.text
        yield Stack(gateway=gateway.url, notes_db=tmp / "notes.db")
    finally:
        procs.stop_all()


@dataclass
class Agents:
    """The model openai-agents runs on (the gateway's Responses API) and the bodies it sent there."""

    model: OpenAIResponsesModel
    sent: list[dict[str, Any]]


@pytest.fixture
async def oa(stack: Stack) -> AsyncIterator[Agents]:
    set_tracing_disabled(True)
    sent: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/responses"):
            sent.append(json.loads(request.content))

    async with (
        httpx.AsyncClient(event_hooks={"request": [record]}, timeout=60) as http,
        openai.AsyncOpenAI(
            base_url=stack.gateway + "/v1", api_key="unused", max_retries=0, http_client=http
        ) as client,
    ):
        yield Agents(OpenAIResponsesModel(model="mock-model", openai_client=client), sent)


def notes_with(db: Path, text: str) -> int:
    """How many notes with exactly ``text`` the notes server stored: what really ran."""
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM notes WHERE text = ?", (text,)).fetchone()[0])


def clock_tool(**config: Any) -> HostedMCPTool:
    return HostedMCPTool(
        tool_config={"type": "mcp", "server_label": "clock", "require_approval": "never", **config}
    )


# openai-agents sends the whole conversation each turn by default; with auto_previous_response_id it
# sends only the new items and the previous response's id. Both must work.
CHAINING = pytest.mark.parametrize("chained", [False, True], ids=["whole-input", "auto-previous-response-id"])


@CHAINING
async def test_a_function_tool_runs_in_the_agent_and_the_model_reads_its_result(
    oa: Agents, chained: bool
) -> None:
    ran: list[str] = []

    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"sunny in {city}"

    agent = Agent(name="forecaster", instructions="Answer briefly.", tools=[weather], model=oa.model)
    result = await Runner.run(agent, 'CALL weather {"city": "Tokyo"}', auto_previous_response_id=chained)
    assert ran == ["Tokyo"]
    assert result.final_output == "tool results: sunny in Tokyo"
    first, second = oa.sent
    assert [t["type"] for t in first["tools"]] == ["function"]
    kinds = [item.get("type", "message") for item in second["input"]]
    if chained:
        assert kinds == ["function_call_output"]
        assert second["previous_response_id"] == result.raw_responses[0].response_id
    else:
        assert kinds == ["message", "function_call", "function_call_output"]
        assert "previous_response_id" not in second


async def test_a_hosted_mcp_tool_runs_in_the_gateway(oa: Agents) -> None:
    agent = Agent(name="clock", tools=[clock_tool()], model=oa.model)
    result = await Runner.run(agent, CONVERT)
    listed = [item for item in result.new_items if isinstance(item, MCPListToolsItem)]
    calls = [item.raw_item for item in result.new_items if isinstance(item, ToolCallItem)]
    assert [item.raw_item.server_label for item in listed] == ["clock"]
    (call,) = calls
    assert call.type == "mcp_call"
    assert call.output is not None and "Asia/Tokyo" in call.output
    assert result.final_output == f"tool results: {call.output}"
    assert len(oa.sent) == 1  # one Responses call: the gateway ran the tool loop
    assert oa.sent[0]["tools"] == [{"type": "mcp", "server_label": "clock", "require_approval": "never"}]


def approve_keep(keep: str, asked: list[str]) -> Callable[[MCPToolApprovalRequest], Any]:
    """An ``on_approval_request`` callback: approves the calls whose arguments contain ``keep``, denies
    the others with a reason; records the arguments it was asked about."""

    def decide(request: MCPToolApprovalRequest) -> MCPToolApprovalFunctionResult:
        asked.append(request.data.arguments)
        if keep in request.data.arguments:
            return {"approve": True}
        return {"approve": False, "reason": "not this one"}

    return decide


@CHAINING
async def test_hosted_mcp_approvals_approve_one_call_and_deny_another(
    oa: Agents, stack: Stack, chained: bool
) -> None:
    keep, drop = f"keep {uuid.uuid4()}", f"drop {uuid.uuid4()}"
    asked: list[str] = []
    notes = HostedMCPTool(
        tool_config={"type": "mcp", "server_label": "notes", "require_approval": "always"},
        on_approval_request=approve_keep(keep, asked),
    )
    agent = Agent(name="notes", tools=[notes], model=oa.model)
    prompt = f'CALL notes__add {{"text": "{keep}"}}\nCALL notes__add {{"text": "{drop}"}}'
    result = await Runner.run(agent, prompt, auto_previous_response_id=chained)
    assert len(asked) == 2
    assert notes_with(stack.notes_db, keep) == 1
    assert notes_with(stack.notes_db, drop) == 0
    answers = [item for item in oa.sent[1]["input"] if item.get("type") == "mcp_approval_response"]
    assert sorted(a["approve"] for a in answers) == [False, True]
    calls = [item.raw_item for item in result.new_items if isinstance(item, ToolCallItem)]
    (call,) = calls
    assert call.type == "mcp_call"
    assert keep in call.arguments
    assert call.approval_request_id in {a["approval_request_id"] for a in answers if a["approve"]}
    assert result.final_output == f"tool results: {call.output} | " + denial_text("not this one")
    assert len(oa.sent) == 2


async def test_an_approval_after_a_free_call_of_an_earlier_round_is_asked_once(
    oa: Agents, stack: Stack
) -> None:
    keep = f"keep {uuid.uuid4()}"
    asked: list[str] = []
    notes = HostedMCPTool(
        tool_config={
            "type": "mcp",
            "server_label": "notes",
            "require_approval": {"always": {"tool_names": ["add"]}},
        },
        on_approval_request=approve_keep(keep, asked),
    )
    agent = Agent(name="notes", tools=[notes], model=oa.model)
    result = await Runner.run(agent, f'CALL notes__list {{}}\nNEXT\nCALL notes__add {{"text": "{keep}"}}')
    assert len(asked) == 1
    assert notes_with(stack.notes_db, keep) == 1
    names = [item.raw_item.name for item in result.new_items if isinstance(item, ToolCallItem)]
    assert names == ["list", "add"]
    assert isinstance(result.final_output, str) and keep in result.final_output
    assert len(oa.sent) == 2


async def test_a_streamed_run_with_a_hosted_mcp_tool_ends_as_the_plain_run(oa: Agents) -> None:
    agent = Agent(name="clock", tools=[clock_tool()], model=oa.model)
    plain = await Runner.run(agent, CONVERT)
    streamed = Runner.run_streamed(agent, CONVERT)
    events = [event async for event in streamed.stream_events()]
    assert streamed.is_complete
    assert oa.sent[-1]["stream"] is True
    raw = [e.data.type for e in events if isinstance(e, RawResponsesStreamEvent)]
    assert raw[0] == "response.created" and raw[-1] == "response.completed"
    assert "response.mcp_call.completed" in raw
    named = [e.name for e in events if isinstance(e, RunItemStreamEvent)]
    assert named == ["mcp_list_tools", "tool_called", "message_output_created"]
    assert streamed.final_output == plain.final_output
    assert [type(item) for item in streamed.new_items] == [type(item) for item in plain.new_items]


async def test_without_a_callback_the_run_stops_at_the_approval_and_its_state_resumes(
    oa: Agents, stack: Stack
) -> None:
    text = f"later {uuid.uuid4()}"
    notes = HostedMCPTool(tool_config={"type": "mcp", "server_label": "notes", "require_approval": "always"})
    agent = Agent(name="notes", tools=[notes], model=oa.model)
    stopped = await Runner.run(agent, f'CALL notes__add {{"text": "{text}"}}')
    (pending,) = stopped.interruptions
    assert pending.raw_item.type == "mcp_approval_request"  # type: ignore[union-attr]
    assert notes_with(stack.notes_db, text) == 0
    state = stopped.to_state()
    state.approve(pending)
    resumed = await Runner.run(agent, state)
    assert notes_with(stack.notes_db, text) == 1
    assert isinstance(resumed.final_output, str) and text in resumed.final_output


async def test_a_response_ended_incomplete_by_a_loop_budget_is_raised_by_the_sdk(oa: Agents) -> None:
    agent = Agent(name="clock", tools=[clock_tool()], model=oa.model)
    with pytest.raises(ModelBehaviorError, match="incomplete"):
        await Runner.run(agent, 'FOREVER clock__now {"timezone": "UTC"}')


def test_the_openai_agents_example_of_the_responses_doc_runs(stack: Stack) -> None:
    section = DOC.read_text().partition("## With openai-agents")[2].partition("\n## ")[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    scope: dict[str, object] = {}
    exec(block.replace("http://127.0.0.1:30000", stack.gateway), scope)  # the doc's own code
    assert scope["local"] == "tool results: sunny in Tokyo"
    hosted = scope["hosted"]
    assert isinstance(hosted, str) and hosted.startswith("tool results: {")
    assert '"time": "2026-01-01T21:00:00+09:00"' in hosted
