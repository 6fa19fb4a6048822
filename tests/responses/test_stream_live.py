"""``stream: true`` is sent as the loop runs, proven by order, never by time: the scripted worker holds
the rest of its reply (``hold_after_chunks``) until the test has read the first text delta through the
gateway, and an MCP tool that never returns (the faults server's ``hang``) ends only when the test stops
its server, after reading ``response.mcp_call.in_progress``. A stream that breaks after its first byte
ends with ``response.failed`` and OpenAI's ``error`` event and is stored ``failed``; a client that
leaves is recorded once as ``client_disconnected``. Every event validates as openai-python's, numbers
increase from 0, and the items the events announce are the final response's, index for index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

import smg.responses.live
from smg.settings import McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import stop
from smg.testing.worker import RunningWorker
from tests._helpers import eventually, sample
from tests._procs import Procs
from tests.conftest import make_settings
from tests.responses.test_create import LOOKUP
from tests.responses.test_stream import comparable

pytestmark = pytest.mark.e2e

EVENT = TypeAdapter(ResponseStreamEvent)
LIMIT_SECS = 60  # a bound on every wait, never a measurement
RESPONSES = {"router_type": "http", "model": "mock-model", "endpoint": "responses", "streaming": "true"}


@dataclass
class Events:
    """The events read so far from one stream, each validated as openai-python's event types."""

    lines: AsyncIterator[str]
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def next(self) -> dict[str, Any] | None:
        """The next event, or None at the end of the stream."""
        name = None
        async for line in self.lines:
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = orjson.loads(line.removeprefix("data: "))
                assert name == event["type"]
                EVENT.validate_python(event)
                self.seen.append(event)
                return event
        return None

    async def until(self, kind: str) -> dict[str, Any]:
        """Read up to and including the first event of type ``kind``."""
        while (event := await self.next()) is not None:
            if event["type"] == kind:
                return event
        raise AssertionError(f"the stream ended without {kind}: {[e['type'] for e in self.seen]}")

    async def rest(self) -> list[dict[str, Any]]:
        while await self.next() is not None:
            pass
        return self.seen

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.seen]


@asynccontextmanager
async def streamed(gateway: RunningGateway, **body: Any) -> AsyncIterator[Events]:
    """``POST /v1/responses`` with ``stream: true``, its events read as they arrive, every wait bounded."""
    async with (
        asyncio.timeout(LIMIT_SECS),
        httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client,
        client.stream("POST", "/v1/responses", json={"model": "mock-model", **body, "stream": True}) as resp,
    ):
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        yield Events(resp.aiter_lines())


def consistent(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Check what holds for every stream and return the response its last lifecycle event carries:
    numbers 0, 1, 2...; created and in_progress first; each item added at the next index, done once,
    with the id it was added with, and at that index in the final response, as it was done."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    final = next(e["response"] for e in reversed(events) if "response" in e)
    Response.model_validate(final)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    done = {e["output_index"]: e["item"] for e in events if e["type"] == "response.output_item.done"}
    assert [e["output_index"] for e in added] == list(range(len(added)))
    for event in added:
        index, item_id = event["output_index"], event["item"]["id"]
        if index in done:
            assert done[index]["id"] == item_id
    assert final["output"] == [done[i] for i in sorted(done)]
    assert len({e["response"]["id"] for e in events if "response" in e}) == 1
    return final


async def set_faults(worker: RunningWorker, **faults: Any) -> None:
    async with httpx.AsyncClient(timeout=LIMIT_SECS) as client:
        resp = await client.post(f"{worker.url}/_smg/faults", json=faults)
        assert resp.status_code == 200, resp.text


async def test_text_deltas_arrive_while_the_worker_still_holds_the_rest_of_its_reply(
    gateway: RunningGateway, worker: RunningWorker
) -> None:
    await set_faults(worker, hold_after_chunks=2)  # the role chunk and "echo: ", then nothing
    async with streamed(gateway, input="the quick brown fox") as events:
        first = await events.until("response.output_text.delta")
        assert first["delta"] == "echo: "
        assert "response.output_text.done" not in events.kinds()
        await set_faults(worker, hold_after_chunks=None)  # only now may the worker go on
        seen = await events.rest()
    final = consistent(seen)
    deltas = [e["delta"] for e in seen if e["type"] == "response.output_text.delta"]
    assert deltas == ["echo: ", "the ", "quick ", "brown ", "fox"]
    assert seen[-1]["type"] == "response.completed"
    assert final["output"][0]["content"][0]["text"] == "echo: the quick brown fox"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client:
        assert (await client.get(f"/v1/responses/{final['id']}")).json() == final


@pytest.fixture
async def mcp_gateway(
    worker: RunningWorker, start_gateway: Callable[..., Any], procs: Procs, tmp_path: Path
) -> tuple[RunningGateway, Procs]:
    """A gateway with the faults MCP server (a process, stopped by PID) registered as ``faults``."""
    _, url = procs.mcp_faults()
    mcp = McpSettings(registry_path=str(tmp_path / "smg.db"))
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=mcp))
    async with httpx.AsyncClient(base_url=gw.url, timeout=LIMIT_SECS) as admin:
        server = {"name": "faults", "transport": "streamable-http", "url": url}
        resp = await admin.post("/mcp/servers", json=server)
        assert resp.status_code == 201, resp.text
    return gw, procs


def faults_tool(**extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "faults", "require_approval": "never", **extra}


async def test_an_mcp_call_is_in_progress_while_its_tool_still_runs(
    mcp_gateway: tuple[RunningGateway, Procs],
) -> None:
    gateway, procs = mcp_gateway
    async with streamed(gateway, input="CALL faults__hang {}", tools=[faults_tool()]) as events:
        running = await events.until("response.mcp_call.in_progress")
        ended = ("response.mcp_call.completed", "response.mcp_call.failed")
        assert not [k for k in events.kinds() if k in ended]
        stop(procs.started[0])  # the tool never returns: the call ends only because its server is gone
        seen = await events.rest()
    final = consistent(seen)
    failed = next(e for e in seen if e["type"] == "response.mcp_call.failed")
    assert failed["item_id"] == running["item_id"] and failed["output_index"] == running["output_index"]
    call = final["output"][running["output_index"]]
    assert (call["type"], call["name"], call["status"]) == ("mcp_call", "hang", "failed")
    assert seen[-1]["type"] == "response.completed"
    assert [i["type"] for i in final["output"]] == ["mcp_list_tools", "mcp_call", "message"]


async def test_an_approval_and_the_call_it_approves_stream_as_the_final_items(
    mcp_gateway: tuple[RunningGateway, Procs],
) -> None:
    gateway, _ = mcp_gateway
    tool = faults_tool(require_approval="always")
    async with streamed(gateway, input='CALL faults__echo {"text": "hi"}', tools=[tool]) as events:
        held = consistent(await events.rest())
    assert [i["type"] for i in held["output"]] == ["mcp_list_tools", "mcp_approval_request"]
    request = held["output"][1]
    answer = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
    async with streamed(gateway, input=[answer], tools=[tool], previous_response_id=held["id"]) as events:
        seen = await events.rest()
    resumed = consistent(seen)
    call, message = resumed["output"]
    assert (call["type"], call["approval_request_id"], call["output"]) == ("mcp_call", request["id"], "hi")
    assert message["content"][0]["text"] == "tool results: hi"
    kinds = events.kinds()
    assert kinds.index("response.mcp_call.completed") < kinds.index("response.output_text.delta")


@pytest.mark.parametrize(
    ("params", "output"),
    [
        (
            {
                "input": 'CALL faults__echo {"text": "a"}\nNEXT\nCALL faults__echo {"text": "b"}',
                "max_tool_calls": 1,
            },
            ["mcp_list_tools", "mcp_call"],  # the second round would pass the budget: incomplete
        ),
        (
            {"input": 'CALL faults__echo {"text": "a"}\nCALL lookup {"q": 1}', "tools": [LOOKUP]},
            ["mcp_list_tools", "function_call"],  # a mixed round runs nothing, returns the client's call
        ),
    ],
    ids=["budget-stop", "mixed-round"],
)
async def test_a_streamed_loop_ends_as_the_whole_response_does(
    mcp_gateway: tuple[RunningGateway, Procs], params: dict[str, Any], output: list[str]
) -> None:
    gateway, _ = mcp_gateway
    body = params | {"tools": [faults_tool(), *params.get("tools", [])]}
    async with streamed(gateway, **body) as events:
        streamed_final = consistent(await events.rest())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client:
        whole = (await client.post("/v1/responses", json={"model": "mock-model", **body})).json()
    assert comparable(streamed_final) == comparable(whole)
    assert [item["type"] for item in whole["output"]] == output
    assert events.kinds()[-1] == f"response.{whole['status']}"


async def test_a_worker_that_breaks_mid_stream_ends_it_with_an_error_event_and_a_failed_response(
    gateway: RunningGateway, worker: RunningWorker
) -> None:
    worker.faults.drop_after_chunks = 2  # the role chunk and "echo: ", then the connection closes
    async with streamed(gateway, input="the quick brown fox") as events:
        seen = await events.rest()  # the gateway's stream ends cleanly: no transport error here
    assert events.kinds()[-3:] == ["response.output_text.delta", "response.failed", "error"]
    error = seen[-1]
    assert error["code"] == "upstream_protocol_error" and error["message"] and error["param"] is None
    failed = consistent(seen)
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"] == []  # the message never finished
    async with httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client:
        assert (await client.get(f"/v1/responses/{failed['id']}")).json() == failed
    metrics = gateway.context.metrics
    assert sample(metrics, "smg_router_requests_total", **RESPONSES) == 1
    errors = sample(metrics, "smg_router_request_errors_total", **RESPONSES, error_type=error["code"])
    assert errors == 1


async def test_an_internal_failure_after_the_first_byte_ends_the_stream_with_an_error_event(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(smg.responses.live, "final_items", broken)
    async with streamed(gateway, input="hello") as events:
        seen = await events.rest()
    assert events.kinds()[-2:] == ["response.failed", "error"]
    assert (seen[-1]["code"], seen[-1]["message"]) == ("internal_error", "internal error")
    assert consistent(seen)["status"] == "failed"
    labels = RESPONSES | {"error_type": "internal_error"}
    assert sample(gateway.context.metrics, "smg_router_request_errors_total", **labels) == 1


async def test_a_client_that_leaves_mid_stream_cancels_the_run_and_is_recorded_once(
    gateway: RunningGateway, worker: RunningWorker
) -> None:
    await set_faults(worker, hold_after_chunks=2)
    async with streamed(gateway, input="the quick brown fox") as events:
        created = await events.until("response.output_text.delta")
    # The client closed the connection mid-stream, while the worker still held the reply.
    metrics = gateway.context.metrics
    labels = RESPONSES | {"error_type": "client_disconnected"}
    async with asyncio.timeout(LIMIT_SECS):
        await eventually(lambda: sample(metrics, "smg_router_request_errors_total", **labels) == 1)
        await eventually(lambda: all(w.in_flight == 0 for w in gateway.context.registry))
        await eventually(lambda: gateway.context.admission.inflight == 0)
    assert sample(metrics, "smg_router_requests_total", **RESPONSES) == 1
    response_id = events.seen[0]["response"]["id"]
    assert created["type"] == "response.output_text.delta"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client:
        assert (await client.get(f"/v1/responses/{response_id}")).status_code == 404  # nothing stored


def tool_calls_running() -> int:
    """Tasks of this event loop (the in-process gateway's too) inside the loop's tool execution."""
    return sum(
        any(f.f_code.co_filename.endswith("smg/routing/execution.py") for f in task.get_stack())
        for task in asyncio.all_tasks()
    )


async def test_a_client_that_leaves_during_a_tool_call_cancels_the_call(
    mcp_gateway: tuple[RunningGateway, Procs],
) -> None:
    gateway, _ = mcp_gateway
    async with streamed(gateway, input="CALL faults__hang {}", tools=[faults_tool()]) as events:
        await events.until("response.mcp_call.in_progress")
        await eventually(lambda: tool_calls_running() > 0)  # the call the stream waits for
    metrics = gateway.context.metrics
    labels = RESPONSES | {"error_type": "client_disconnected"}
    async with asyncio.timeout(LIMIT_SECS):
        await eventually(lambda: sample(metrics, "smg_router_request_errors_total", **labels) == 1)
        await eventually(lambda: tool_calls_running() == 0)
    assert sample(metrics, "smg_router_requests_total", **RESPONSES) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": "hi", "previous_response_id": "resp_unknown"}, 404, "response_not_found"),
        ({"input": "hi", "tools": [{"type": "mcp", "server_label": "nope"}]}, 400, "invalid_request"),
    ],
    ids=["unknown-previous-response", "unknown-server"],
)
async def test_errors_before_the_stream_starts_are_ordinary_json_errors(
    gateway: RunningGateway, body: dict[str, Any], status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client:
        resp = await client.post("/v1/responses", json={"model": "mock-model", **body, "stream": True})
    assert resp.status_code == status
    assert resp.headers["x-smg-error-code"] == code
    assert resp.json()["error"]["code"] == code


async def test_no_worker_before_the_stream_starts_is_an_ordinary_503(
    start_gateway: Callable[..., Any], worker: RunningWorker
) -> None:
    worker.faults.status = 503  # every attempt of the first round fails before its first byte
    gateway: RunningGateway = await start_gateway(make_settings((worker.url,)))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=LIMIT_SECS) as client:
        body = {"model": "mock-model", "input": "hi", "stream": True}
        resp = await client.post("/v1/responses", json=body)
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/json"
