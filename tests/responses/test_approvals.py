"""MCP approvals on POST /v1/responses: a call that needs approval ends the response with an
``mcp_approval_request``; a follow-up's ``mcp_approval_response`` runs exactly that call (or reports the
denial to the model) and continues the loop. Real MCP server processes (notes over SSE, with its SQLite
file read here to see what really ran), the scripted worker, the official openai client."""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseItemList

from smg.settings import McpSettings, Settings
from smg.testing.gateway import RunningGateway, running_gateway
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings
from tests.responses.conftest import client_of, create
from tests.responses.test_stream import comparable, raw_events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The notes MCP server over SSE (its URL and its database file), stopped by PID."""
    db = tmp_path_factory.mktemp("notes") / "notes.db"
    proc = spawn(
        [sys.executable, "-m", "mcp_servers.notes", "--transport", "sse", "--port", "0", "--db", str(db)]
    )
    try:
        yield wait_for_line(proc, "MCP_SERVER_READY"), db
    finally:
        stop(proc)


def notes_with(db: Path, text: str) -> int:
    """How many notes with exactly ``text`` the notes server stored: what really ran."""
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM notes WHERE text = ?", (text,)).fetchone()[0])


@pytest.fixture
def settings(worker: RunningWorker, tmp_path: Path) -> Settings:
    return make_settings((worker.url,), mcp=McpSettings(registry_path=str(tmp_path / "smg.db")))


@pytest.fixture
async def gateway(
    settings: Settings, start_gateway: Callable[..., Any], notes: tuple[str, Path]
) -> RunningGateway:
    gw: RunningGateway = await start_gateway(settings)
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as admin:
        resp = await admin.post("/mcp/servers", json={"name": "notes", "transport": "sse", "url": notes[0]})
        assert resp.status_code == 201, resp.text
    return gw


def gated(require_approval: Any = "always") -> list[Any]:
    return [{"type": "mcp", "server_label": "notes", "require_approval": require_approval}]


def add(text: str) -> str:
    return f'CALL notes__add {{"text": "{text}"}}'


def answer(request_id: str, approve: bool, **extra: Any) -> list[Any]:
    return [{"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve, **extra}]


async def requests_of(worker: RunningWorker) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as c:
        recorded: list[dict[str, Any]] = (await c.get("/_smg/requests")).json()
        return recorded


def approvals(gateway: RunningGateway, decision: str) -> float:
    value = gateway.context.metrics.registry.get_sample_value(
        "smg_mcp_approvals_total", {"decision": decision}
    )
    return value or 0.0


async def ask(oai: openai.AsyncOpenAI, text: str) -> tuple[Any, dict[str, Any]]:
    """A response held for the approval of one ``notes.add`` call of ``text``."""
    return await create(oai, model="mock-model", input=add(text), tools=gated())


async def test_always_ends_the_response_with_an_approval_request_and_runs_nothing(
    oai: openai.AsyncOpenAI, gateway: RunningGateway, notes: tuple[str, Path]
) -> None:
    text = f"held-{uuid.uuid4().hex}"
    response, body = await ask(oai, text)
    assert response.status == "completed"
    assert [item["type"] for item in body["output"]] == ["mcp_list_tools", "mcp_approval_request"]
    request = body["output"][1]
    assert set(request) == {"type", "id", "server_label", "name", "arguments"}
    assert (request["server_label"], request["name"]) == ("notes", "add")
    assert request["arguments"] == f'{{"text": "{text}"}}'
    assert request["id"].startswith("mcpr_")
    assert body["smg"]["tool_calls"] == []
    assert notes_with(notes[1], text) == 0
    assert approvals(gateway, "requested") == 1


async def test_approve_runs_exactly_the_stored_call_once_and_the_model_reads_its_result(
    oai: openai.AsyncOpenAI, gateway: RunningGateway, worker: RunningWorker, notes: tuple[str, Path]
) -> None:
    text = f"approved-{uuid.uuid4().hex}"
    first, held = await ask(oai, text)
    request = held["output"][1]
    second, body = await create(
        oai,
        model="mock-model",
        previous_response_id=first.id,
        input=answer(request["id"], True),
        tools=gated(),
    )
    assert [item["type"] for item in body["output"]] == ["mcp_call", "message"]  # not listed again
    call = body["output"][0]
    assert call["approval_request_id"] == request["id"]
    assert (call["server_label"], call["name"], call["arguments"]) == ("notes", "add", request["arguments"])
    assert call["status"] == "completed" and text in call["output"]
    assert notes_with(notes[1], text) == 1  # ran once, on the notes server
    assert second.output_text == f"tool results: {call['output']}"
    sent = await requests_of(worker)
    assert len(sent) == 2  # one model call per response: the model was not asked for the call again
    assert sent[-1]["body"]["messages"] == [
        {"role": "user", "content": add(text)},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": request["id"],
                    "type": "function",
                    "function": {"name": "notes__add", "arguments": request["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": request["id"], "content": call["output"]},
    ]
    assert [(c["server"], c["tool"], c["status"]) for c in body["smg"]["tool_calls"]] == [
        ("notes", "add", "ok")
    ]
    assert (approvals(gateway, "requested"), approvals(gateway, "approved")) == (1, 1)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        listed = ResponseItemList.model_validate(
            (await c.get(f"/v1/responses/{second.id}/input_items")).json()
        )
    assert [(i.type, getattr(i, "approve", None)) for i in listed.data] == [("mcp_approval_response", True)]
    third, _ = await create(oai, model="mock-model", previous_response_id=second.id, input="thanks")
    assert third.output_text == "echo: thanks"
    assert notes_with(notes[1], text) == 1  # a later turn does not run it again


async def test_deny_runs_nothing_and_the_model_reads_the_denial_with_its_reason(
    oai: openai.AsyncOpenAI, gateway: RunningGateway, worker: RunningWorker, notes: tuple[str, Path]
) -> None:
    text = f"denied-{uuid.uuid4().hex}"
    first, held = await ask(oai, text)
    request_id = held["output"][1]["id"]
    second, body = await create(
        oai,
        model="mock-model",
        previous_response_id=first.id,
        input=answer(request_id, False, reason="not on a Friday"),
        tools=gated(),
    )
    assert [item["type"] for item in body["output"]] == ["message"]
    assert notes_with(notes[1], text) == 0
    tool = (await requests_of(worker))[-1]["body"]["messages"][-1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == request_id
    assert "did not approve" in tool["content"] and "not on a Friday" in tool["content"]
    assert second.output_text == f"tool results: {tool['content']}"
    assert (approvals(gateway, "approved"), approvals(gateway, "denied")) == (0, 1)


async def test_one_call_approved_and_one_denied_in_one_round(
    oai: openai.AsyncOpenAI, worker: RunningWorker, notes: tuple[str, Path]
) -> None:
    yes, no = f"yes-{uuid.uuid4().hex}", f"no-{uuid.uuid4().hex}"
    first, held = await create(oai, model="mock-model", input=f"{add(yes)}\n{add(no)}", tools=gated())
    asked = [item for item in held["output"] if item["type"] == "mcp_approval_request"]
    assert [orjson_text(item) for item in asked] == [yes, no]
    _, body = await create(
        oai,
        model="mock-model",
        previous_response_id=first.id,
        input=answer(asked[0]["id"], True) + answer(asked[1]["id"], False),
        tools=gated(),
    )
    assert [item["type"] for item in body["output"]] == ["mcp_call", "message"]
    assert (notes_with(notes[1], yes), notes_with(notes[1], no)) == (1, 0)
    messages = (await requests_of(worker))[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in messages[2:]] == [asked[0]["id"], asked[1]["id"]]
    assert "did not approve" in messages[3]["content"]


def orjson_text(item: dict[str, Any]) -> str:
    return str(httpx.Response(200, content=item["arguments"]).json()["text"])


@pytest.mark.parametrize("case", ["answered", "other_chain", "unknown", "twice_in_one_request"])
async def test_an_approval_id_not_pending_in_this_chain_is_a_400_naming_it(
    oai: openai.AsyncOpenAI, gateway: RunningGateway, notes: tuple[str, Path], case: str
) -> None:
    text = f"{case}-{uuid.uuid4().hex}"
    first, held = await ask(oai, text)
    request_id = held["output"][1]["id"]
    previous, given = first.id, answer(request_id, True)
    if case == "answered":
        previous = (await create(oai, model="mock-model", previous_response_id=first.id, input=given))[0].id
    elif case == "other_chain":
        previous = (await ask(oai, f"other-{text}"))[0].id
    elif case == "unknown":
        given = answer("mcpr_unknown", True)
    else:
        given = given + given
    ran = notes_with(notes[1], text)
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(
            model="mock-model", previous_response_id=previous, input=given, tools=gated()
        )
    assert caught.value.param == "input"
    assert caught.value.code == "invalid_request"
    assert str(given[0]["approval_request_id"]) in caught.value.message
    assert notes_with(notes[1], text) == ran  # nothing ran
    assert approvals(gateway, "approved") == (1 if case == "answered" else 0)


async def test_an_approval_is_answered_after_the_gateway_restarts(
    settings: Settings, notes: tuple[str, Path]
) -> None:
    text = f"restart-{uuid.uuid4().hex}"
    async with running_gateway(settings) as first_gateway, client_of(first_gateway) as oai:
        async with httpx.AsyncClient(base_url=first_gateway.url, timeout=60) as admin:
            server = {"name": "notes", "transport": "sse", "url": notes[0]}
            assert (await admin.post("/mcp/servers", json=server)).status_code == 201
        first, held = await ask(oai, text)
    # The first gateway is gone; the next one opens the same database file (registry and responses).
    async with running_gateway(settings) as again, client_of(again) as oai:
        _, body = await create(
            oai,
            model="mock-model",
            previous_response_id=first.id,
            input=answer(held["output"][1]["id"], True),
            tools=gated(),
        )
    assert body["output"][0]["approval_request_id"] == held["output"][1]["id"]
    assert body["output"][0]["status"] == "completed"
    assert notes_with(notes[1], text) == 1


async def test_per_tool_names_gate_only_those_tools_and_hold_their_whole_round(
    oai: openai.AsyncOpenAI, notes: tuple[str, Path]
) -> None:
    text = f"named-{uuid.uuid4().hex}"
    tools = gated({"always": {"tool_names": ["add"]}})
    ungated, body = await create(oai, model="mock-model", input="CALL notes__list {}", tools=tools)
    assert [item.type for item in ungated.output] == ["mcp_list_tools", "mcp_call", "message"]
    mixed = f"CALL notes__list {{}}\n{add(text)}"
    _, body = await create(oai, model="mock-model", input=mixed, tools=tools)
    assert [item["type"] for item in body["output"]] == ["mcp_list_tools", "mcp_approval_request"]
    assert body["output"][1]["name"] == "add"
    assert body["smg"]["tool_calls"] == []  # list, asked in the same round, did not run either
    rounds = f"CALL notes__list {{}}\nNEXT\n{add(text)}"
    _, body = await create(oai, model="mock-model", input=rounds, tools=gated({"never": {"read_only": True}}))
    assert [item["type"] for item in body["output"]] == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    assert notes_with(notes[1], text) == 0


async def test_a_streamed_approval_request_is_an_output_item_and_accumulates_as_non_streamed(
    oai: openai.AsyncOpenAI, gateway: RunningGateway
) -> None:
    params: dict[str, Any] = {"input": add(f"stream-{uuid.uuid4().hex}"), "tools": gated()}
    _, whole = await create(oai, model="mock-model", **params)
    async with oai.responses.stream(model="mock-model", **params) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert comparable(final.model_dump(mode="json", exclude_unset=True)) == comparable(whole)
    events = await raw_events(gateway, model="mock-model", **params)  # each validated as openai's event
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in events]
    assert kinds[-3:] == [
        ("response.output_item.added", "mcp_approval_request"),
        ("response.output_item.done", "mcp_approval_request"),
        ("response.completed", None),
    ]


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("tools", gated("sometimes"), "tools[0].require_approval"),
        ("tools", gated({"always": {"names": ["add"]}}), "tools[0].require_approval.always"),
        (
            "input",
            [{"type": "mcp_approval_response", "approval_request_id": "x", "approve": "yes"}],
            "input[0].approve",
        ),
    ],
)
async def test_malformed_approval_fields_are_refused_naming_them(
    oai: openai.AsyncOpenAI, field: str, value: Any, param: str
) -> None:
    params: dict[str, Any] = {"input": "hi", "tools": gated()} | {field: value}
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model="mock-model", **params)
    assert caught.value.param == param


async def test_without_storage_the_client_sends_the_conversation_back_and_an_answer_runs_once(
    oai: openai.AsyncOpenAI, notes: tuple[str, Path]
) -> None:
    text = f"stateless-{uuid.uuid4().hex}"
    conversation: list[Any] = [{"role": "user", "content": add(text)}]
    _, held = await create(oai, model="mock-model", input=conversation, tools=gated(), store=False)
    conversation += held["output"] + answer(held["output"][1]["id"], True)
    _, body = await create(oai, model="mock-model", input=conversation, tools=gated(), store=False)
    assert body["output"][0]["approval_request_id"] == held["output"][1]["id"]
    conversation += body["output"] + [{"role": "user", "content": "thanks"}]
    last, _ = await create(oai, model="mock-model", input=conversation, tools=gated(), store=False)
    assert last.output_text == "echo: thanks"
    assert notes_with(notes[1], text) == 1  # the answer sent back with its mcp_call did not run again


async def test_an_answer_retried_after_its_model_round_failed_does_not_run_the_call_again(
    oai: openai.AsyncOpenAI, worker: RunningWorker, notes: tuple[str, Path]
) -> None:
    text = f"retried-{uuid.uuid4().hex}"
    first, held = await ask(oai, text)
    given = answer(held["output"][1]["id"], True)
    worker.faults.status = 500  # the model round after the approved call fails
    with pytest.raises(openai.APIStatusError):
        await create(oai, model="mock-model", previous_response_id=first.id, input=given, tools=gated())
    assert notes_with(notes[1], text) == 1  # the approved call ran before the round failed
    worker.faults.reset()
    second, body = await create(
        oai, model="mock-model", previous_response_id=first.id, input=given, tools=gated()
    )
    assert notes_with(notes[1], text) == 1  # not again: the recorded result is reused
    call = body["output"][0]
    assert (call["approval_request_id"], call["status"]) == (held["output"][1]["id"], "completed")
    assert second.output_text == f"tool results: {call['output']}"
