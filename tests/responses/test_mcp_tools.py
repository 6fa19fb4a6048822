"""Hosted MCP tools on POST /v1/responses: real MCP servers (streamable HTTP and SSE processes on
127.0.0.1), the scripted worker, the official openai client; the loop is the chat tool loop."""

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
from tests.responses.conftest import client_of, create
from tests.responses.test_create import LOOKUP, worker_requests
from tests.responses.test_stream import comparable, raw_events

pytestmark = pytest.mark.e2e

CONVERT = (
    'CALL clock__convert {"time": "2026-01-01T12:00:00", "from_timezone": "UTC", "to_timezone": "Asia/Tokyo"}'
)


@pytest.fixture(scope="module")
def mcp_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """clock over streamable HTTP and notes over SSE, started once for this module, stopped by PID."""
    procs = {}
    try:
        for name, transport in (("clock", "streamable-http"), ("notes", "sse")):
            args = [sys.executable, "-m", f"mcp_servers.{name}", "--transport", transport, "--port", "0"]
            if name == "notes":
                args += ["--db", str(tmp_path_factory.mktemp("notes") / "notes.db")]
            procs[name] = spawn(args)
        yield {name: wait_for_line(proc, "MCP_SERVER_READY") for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            stop(proc)


@pytest.fixture
async def gateway(
    worker: RunningWorker, start_gateway: Callable[..., Any], mcp_urls: dict[str, str], tmp_path: Path
) -> RunningGateway:
    mcp = McpSettings(max_iterations=6, max_tool_calls=12, registry_path=str(tmp_path / "smg.db"))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=mcp))
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as admin:
        for name, transport in (("clock", "streamable-http"), ("notes", "sse")):
            resp = await admin.post(
                "/mcp/servers", json={"name": name, "transport": transport, "url": mcp_urls[name]}
            )
            assert resp.status_code == 201, resp.text
    return gw


def mcp(server: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": server, "require_approval": "never", **extra}


async def test_an_mcp_round_gives_list_tools_call_and_final_message(oai: openai.AsyncOpenAI) -> None:
    response, body = await create(oai, model="mock-model", input=CONVERT, tools=[mcp("clock")])
    listed, call, message = body["output"]
    assert [listed["type"], call["type"], message["type"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert listed["server_label"] == "clock"
    assert {t["name"] for t in listed["tools"]} == {"now", "convert"}
    assert (call["server_label"], call["name"], call["status"], call["error"]) == (
        "clock",
        "convert",
        "completed",
        None,
    )
    assert '"to_timezone": "Asia/Tokyo"' in call["arguments"]
    assert "Asia/Tokyo" in call["output"]
    assert response.output_text == f"tool results: {call['output']}"
    assert response.status == "completed"
    assert body["smg"]["iterations"] == 2
    executed = [(c["server"], c["tool"], c["status"]) for c in body["smg"]["tool_calls"]]
    assert executed == [("clock", "convert", "ok")]
    assert response.usage is not None
    assert response.usage.output_tokens == 1 + len(response.output_text.split())  # two rounds summed


async def test_a_failing_tool_is_a_failed_mcp_call_the_model_reads(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    bad = CONVERT.replace("Asia/Tokyo", "No/Where")
    response, body = await create(oai, model="mock-model", input=bad, tools=[mcp("clock")])
    call = body["output"][1]
    assert (call["type"], call["status"], call["output"]) == ("mcp_call", "failed", None)
    assert call["error"]["type"] == "mcp_tool_execution_error"
    (text,) = call["error"]["content"]
    assert "unknown timezone 'No/Where'" in text["text"]
    assert response.status == "completed"
    assert response.output_text == f"tool results: {text['text']}"
    await create(oai, model="mock-model", input="and now?", previous_response_id=response.id)
    messages = (await worker_requests(worker))[-1]["body"]["messages"]  # type: ignore[index]
    assert messages[2] == {"role": "tool", "tool_call_id": call["id"], "content": text["text"]}


async def test_read_only_offers_only_tools_annotated_read_only(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    tools = [mcp("notes", allowed_tools={"read_only": True})]
    response, _ = await create(oai, model="mock-model", input='CALL notes__add {"text": "x"}', tools=tools)
    listed = response.output[0]
    assert listed.type == "mcp_list_tools"
    assert sorted(t.name for t in listed.tools) == ["list", "search"]
    assert all(t.annotations["readOnlyHint"] for t in listed.tools)  # type: ignore[index]
    assert [item.type for item in response.output] == ["mcp_list_tools", "message"]  # add was not offered
    sent = (await worker_requests(worker))[-1]["body"]
    assert isinstance(sent, dict)
    assert sorted(t["function"]["name"] for t in sent["tools"]) == ["notes__list", "notes__search"]


async def test_a_mixed_round_returns_the_client_call_and_the_continuation_does_not_list_again(
    oai: openai.AsyncOpenAI,
) -> None:
    tools = [mcp("clock"), LOOKUP]
    first, _ = await create(oai, model="mock-model", input="CALL clock__now {}\nCALL lookup {}", tools=tools)
    assert [item.type for item in first.output] == [
        "mcp_list_tools",
        "function_call",
    ]  # clock__now did not run
    call = first.output[1]
    assert call.type == "function_call"
    second, body = await create(
        oai,
        model="mock-model",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "found"}],
        tools=tools,
    )
    assert [item.type for item in second.output] == ["message"]
    assert second.output_text == "tool results: found"
    assert body["smg"]["tool_calls"] == []


async def test_max_tool_calls_ends_the_response_incomplete_naming_the_budget(oai: openai.AsyncOpenAI) -> None:
    response, body = await create(
        oai, model="mock-model", input="FOREVER clock__now {}", tools=[mcp("clock")], max_tool_calls=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert body["smg"]["stop_reason"] == "max_tool_calls"
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "mcp_call"]
    assert response.max_tool_calls == 2


async def test_an_earlier_mcp_call_is_shown_to_the_model_on_a_continuation(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    first, _ = await create(oai, model="mock-model", input=CONVERT, tools=[mcp("clock")])
    second, _ = await create(oai, model="mock-model", input="thanks", previous_response_id=first.id)
    assert [item.type for item in second.output] == ["message"]
    messages = (await worker_requests(worker))[-1]["body"]["messages"]  # type: ignore[index]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "clock__convert"
    assert messages[2]["content"] == first.output[1].output  # type: ignore[union-attr]  # an mcp_call


async def test_an_unregistered_server_label_is_refused_naming_it(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model="mock-model", input="hi", tools=[LOOKUP, mcp("nowhere")])  # type: ignore[list-item]
    assert caught.value.param == "tools[1].server_label"


async def test_a_request_defined_server_url_is_refused(gateway: RunningGateway) -> None:
    async with client_of(gateway) as oai, httpx.AsyncClient() as _:
        with pytest.raises(openai.BadRequestError) as caught:
            await oai.responses.create(
                model="mock-model",
                input="hi",
                tools=[{"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:1/mcp"}],
            )
    assert caught.value.param == "tools[0].server_url"


async def test_a_streamed_mcp_response_accumulates_to_the_non_streamed_one(
    oai: openai.AsyncOpenAI, gateway: RunningGateway
) -> None:
    failing = CONVERT.replace("Asia/Tokyo", "No/Where")
    params: dict[str, Any] = {"input": f"{CONVERT}\n{failing}", "tools": [mcp("clock")]}
    _, whole = await create(oai, model="mock-model", **params)
    async with oai.responses.stream(model="mock-model", **params) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert comparable(final.model_dump(mode="json", exclude_unset=True)) == comparable(whole)
    kinds = [e["type"] for e in await raw_events(gateway, model="mock-model", **params)]
    assert kinds[2:6] == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ]
    calls = [k for k in kinds if k.startswith("response.mcp_call")]
    assert calls == [  # both calls of the round start before either ends: they run concurrently
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    ]


async def test_earlier_output_items_sent_back_as_input_continue_without_listing_again(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    _, first = await create(oai, model="mock-model", input=CONVERT, tools=[mcp("clock")], store=False)
    again = [{"role": "user", "content": CONVERT}, *first["output"], {"role": "user", "content": "and now?"}]
    second, _ = await create(oai, model="mock-model", input=again, tools=[mcp("clock")], store=False)
    assert [item.type for item in second.output] == ["message"]
    assert second.output_text == "echo: and now?"
    messages = (await worker_requests(worker))[-1]["body"]["messages"]  # type: ignore[index]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
