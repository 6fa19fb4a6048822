"""A conversation continued in the same user turn keeps its model rounds apart: the calls the gateway ran
in one round and the calls it handed back in a later round (approval requests, the client's own
functions) are two assistant messages to the model, not one. Real notes MCP server (SSE process), the
scripted worker (which counts rounds), the official openai client; the conversation goes back whole,
as openai-agents sends it, or by ``previous_response_id``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from smg.settings import McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings
from tests.responses.conftest import create
from tests.responses.test_create import LOOKUP, worker_requests

pytestmark = pytest.mark.e2e

LIST_THEN_ADD = 'CALL notes__list {}\nNEXT\nCALL notes__add {"text": "after the list"}'
GATED_ADD = [
    {"type": "mcp", "server_label": "notes", "require_approval": {"always": {"tool_names": ["add"]}}}
]


@pytest.fixture(scope="module")
def notes_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("notes") / "notes.db"
    proc = spawn(
        [sys.executable, "-m", "mcp_servers.notes", "--transport", "sse", "--port", "0", "--db", str(db)]
    )
    try:
        yield wait_for_line(proc, "MCP_SERVER_READY")
    finally:
        stop(proc)


@pytest.fixture
async def gateway(
    worker: RunningWorker, start_gateway: Callable[..., Any], notes_url: str, tmp_path: Path
) -> RunningGateway:
    mcp = McpSettings(max_iterations=6, registry_path=str(tmp_path / "smg.db"))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=mcp))
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as admin:
        resp = await admin.post("/mcp/servers", json={"name": "notes", "transport": "sse", "url": notes_url})
        assert resp.status_code == 201, resp.text
    return gw


async def continue_with(
    oai: openai.AsyncOpenAI,
    first: dict[str, Any],
    sent: list[Any],
    new: list[Any],
    whole: bool,
    **params: Any,
) -> tuple[Any, dict[str, Any]]:
    """The next request of the same turn: the whole conversation, or ``previous_response_id``."""
    if whole:
        return await create(oai, model="mock-model", input=[*sent, *first["output"], *new], **params)
    return await create(oai, model="mock-model", input=new, previous_response_id=first["id"], **params)


def assistant_calls(messages: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [c["function"]["name"] for c in m["tool_calls"]]
        for m in messages
        if m["role"] == "assistant" and m.get("tool_calls")
    ]


@pytest.mark.parametrize("whole", [True, False], ids=["whole-input", "previous-response-id"])
async def test_an_approval_after_an_earlier_round_of_calls_is_its_own_round(
    oai: openai.AsyncOpenAI, worker: RunningWorker, whole: bool
) -> None:
    sent = [{"role": "user", "content": LIST_THEN_ADD}]
    _, first = await create(oai, model="mock-model", input=sent, tools=GATED_ADD)
    assert [i["type"] for i in first["output"]] == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    request = first["output"][-1]
    answer = [{"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}]
    response, body = await continue_with(oai, first, sent, answer, whole, tools=GATED_ADD)
    assert [i["type"] for i in body["output"]] == ["mcp_call", "message"]  # not asked again
    assert body["output"][0]["approval_request_id"] == request["id"]
    messages = (await worker_requests(worker))[-1]["body"]["messages"]  # type: ignore[index]
    assert assistant_calls(messages) == [["notes__list"], ["notes__add"]]
    assert response.output_text.startswith("tool results: ")


@pytest.mark.parametrize("whole", [True, False], ids=["whole-input", "previous-response-id"])
async def test_a_function_call_after_an_earlier_round_of_calls_is_its_own_round(
    oai: openai.AsyncOpenAI, worker: RunningWorker, whole: bool
) -> None:
    tools = [{"type": "mcp", "server_label": "notes", "require_approval": "never"}, LOOKUP]
    sent = [{"role": "user", "content": 'CALL notes__list {}\nNEXT\nCALL lookup {"q": "x"}'}]
    _, first = await create(oai, model="mock-model", input=sent, tools=tools)
    assert [i["type"] for i in first["output"]] == ["mcp_list_tools", "mcp_call", "function_call"]
    output = [{"type": "function_call_output", "call_id": first["output"][-1]["call_id"], "output": "found"}]
    response, body = await continue_with(oai, first, sent, output, whole, tools=tools)
    assert [i["type"] for i in body["output"]] == ["message"]
    messages = (await worker_requests(worker))[-1]["body"]["messages"]  # type: ignore[index]
    assert assistant_calls(messages) == [["notes__list"], ["lookup"]]
    assert response.output_text == f"tool results: {first['output'][1]['output']} | found"


@pytest.mark.parametrize("whole", [True, False], ids=["whole-input", "previous-response-id"])
async def test_adjacent_rounds_of_gateway_calls_stay_apart_and_a_parallel_round_stays_whole(
    oai: openai.AsyncOpenAI, worker: RunningWorker, whole: bool
) -> None:
    tools = [{"type": "mcp", "server_label": "notes", "require_approval": "never"}, LOOKUP]
    parallel = 'CALL notes__list {}\nCALL notes__search {"query": "a"}'
    script = f"{parallel}\nNEXT\nCALL notes__list {{}}\nNEXT\nCALL lookup {{}}"
    sent = [{"role": "user", "content": script}]
    _, first = await create(oai, model="mock-model", input=sent, tools=tools)
    kinds = [i["type"] for i in first["output"]]
    assert kinds == ["mcp_list_tools", "mcp_call", "mcp_call", "mcp_call", "function_call"]
    output = [{"type": "function_call_output", "call_id": first["output"][-1]["call_id"], "output": "found"}]
    _, body = await continue_with(oai, first, sent, output, whole, tools=tools)
    assert [i["type"] for i in body["output"]] == ["message"]
    messages = (await worker_requests(worker))[-1]["body"]["messages"]  # type: ignore[index]
    assert assistant_calls(messages) == [["notes__list", "notes__search"], ["notes__list"], ["lookup"]]
