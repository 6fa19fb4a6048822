"""Background responses (``background: true``) and ``POST /v1/responses/{id}/cancel``: answered
``queued`` at once, run in the gateway, polled to their final object; cancelled with their worker and
MCP calls; bounded by ``--responses-max-background``; stored ``failed`` when the gateway stops under
them (a killed gateway process, and one shut down gracefully). Real scripted workers, a real stdio MCP
server, the official openai client."""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from smg.errors import InvalidRequest
from smg.observability.metrics import Metrics
from smg.responses.background import SHUT_DOWN, STOPPED, BackgroundRuns
from smg.responses.request import parse_responses_request
from smg.responses.store import SqliteResponseStore, StoredResponse
from smg.settings import McpSettings, ResponsesSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import stop
from smg.testing.worker import RunningWorker
from tests._helpers import assert_error, eventually, sample
from tests._procs import Procs, poll
from tests.conftest import make_settings
from tests.responses.conftest import client_of, create

DOC = Path(__file__).resolve().parents[2] / "docs" / "responses.md"
# An MCP server over stdio whose one tool, ``wait``, notes in a file that it started, then waits until
# its call is cancelled, and notes that it ended.
HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import anyio
    from mcp.server import MCPServer

    notes = Path(sys.argv[1])
    server = MCPServer("hold")


    @server.tool()
    async def wait() -> str:
        \"\"\"Wait until the call is cancelled.\"\"\"
        notes.write_text("started\\n")
        try:
            await anyio.Event().wait()
        finally:
            with notes.open("a") as f:
                f.write("ended\\n")
        return "never"


    server.run(transport="stdio")
    """
)


async def until_done(oai: openai.AsyncOpenAI, response_id: str) -> Response:
    """Poll ``GET /v1/responses/{id}`` until the response left ``queued`` and ``in_progress`` (bounded)."""
    async with asyncio.timeout(30):
        while True:
            response = await oai.responses.retrieve(response_id)
            if response.status not in ("queued", "in_progress"):
                return response
            await asyncio.sleep(0.02)


async def cancel(gateway: RunningGateway, response_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        return await http.post(f"/v1/responses/{response_id}/cancel")


async def cancelled_by_the_client(oai: openai.AsyncOpenAI, response_id: str) -> Response:
    """``client.responses.cancel``, whose answer must validate strictly as openai-python's `Response`."""
    raw = await oai.responses.with_raw_response.cancel(response_id)
    Response.model_validate(raw.http_response.json())
    return raw.parse()


@pytest.fixture
async def bounded(start_gateway: Callable[..., Any], worker: RunningWorker, tmp_path: Path) -> RunningGateway:
    """A gateway that runs one background response at a time."""
    settings = make_settings(
        (worker.url,),
        responses=ResponsesSettings(max_background=1),
        mcp=McpSettings(registry_path=str(tmp_path / "smg.db")),
    )
    gw: RunningGateway = await start_gateway(settings)
    return gw


async def test_a_background_response_is_answered_queued_then_polled_to_its_final_response(
    oai: openai.AsyncOpenAI, metrics: Metrics
) -> None:
    queued, body = await create(oai, model="mock-model", input="the quick brown fox", background=True)
    assert (queued.status, queued.background, queued.output) == ("queued", True, [])
    assert body["usage"] is None
    done = await until_done(oai, queued.id)
    assert (done.status, done.background, done.id) == ("completed", True, queued.id)
    assert done.output_text == "echo: the quick brown fox"
    assert done.created_at == queued.created_at
    Response.model_validate((await oai.responses.with_raw_response.retrieve(queued.id)).http_response.json())
    follow_up, _ = await create(oai, model="mock-model", input="and then?", previous_response_id=done.id)
    assert follow_up.output_text == "echo: and then?"
    items = await oai.responses.input_items.list(queued.id)
    assert [item.content[0].text for item in items.data] == ["the quick brown fox"]  # type: ignore[union-attr]
    # counted as a foreground request is, under the same endpoint
    routed = {"router_type": "http", "model": "mock-model", "endpoint": "responses", "streaming": "false"}
    assert sample(metrics, "smg_router_requests_total", **routed) == 2


async def test_a_background_run_that_fails_ends_failed_with_its_error(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    worker.faults.status = 500
    queued, _ = await create(oai, model="mock-model", input="hi", background=True)
    failed = await until_done(oai, queued.id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "server_error"
    assert "500" in failed.error.message
    Response.model_validate((await oai.responses.with_raw_response.retrieve(queued.id)).http_response.json())


async def test_cancel_stops_a_running_background_response_and_answers_it_again_when_repeated(
    gateway: RunningGateway, oai: openai.AsyncOpenAI, worker: RunningWorker, metrics: Metrics
) -> None:
    worker.faults.hang = True  # the worker never answers: the run waits on its model round
    queued, _ = await create(oai, model="mock-model", input="hi", background=True)
    await eventually(lambda: worker.stats.chat_requests == 1)
    assert (await oai.responses.retrieve(queued.id)).status == "in_progress"
    cancelled = await cancelled_by_the_client(oai, queued.id)
    assert (cancelled.id, cancelled.status, cancelled.background) == (queued.id, "cancelled", True)
    again = await cancelled_by_the_client(oai, queued.id)
    assert again.status == "cancelled"
    assert (await oai.responses.retrieve(queued.id)).status == "cancelled"
    assert worker.stats.chat_requests == 1
    # counted as a foreground request whose client left
    labels = {"router_type": "http", "model": "mock-model", "endpoint": "responses", "streaming": "false"}
    assert sample(metrics, "smg_router_request_errors_total", **labels, error_type="client_disconnected") == 1


async def test_a_running_background_response_cannot_be_continued_until_it_ends(
    gateway: RunningGateway, oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    worker.faults.hang = True
    queued, _ = await create(oai, model="mock-model", input="hi", background=True)
    await eventually(lambda: worker.stats.chat_requests == 1)
    body = {"model": "mock-model", "input": "and then?", "previous_response_id": queued.id}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for extra in ({}, {"stream": True}, {"background": True}):
            resp = await http.post("/v1/responses", json=body | extra)
            assert_error(resp, 400, "invalid_request", param="previous_response_id")
    assert worker.stats.chat_requests == 1  # the refused ones reached no worker
    await cancelled_by_the_client(oai, queued.id)


async def test_cancelling_a_finished_or_foreground_response_is_a_400_and_an_unknown_one_a_404(
    gateway: RunningGateway, oai: openai.AsyncOpenAI
) -> None:
    background, _ = await create(oai, model="mock-model", input="hi", background=True)
    assert (await until_done(oai, background.id)).status == "completed"
    finished = assert_error(await cancel(gateway, background.id), 400, "invalid_request")
    assert "already completed" in finished["message"]
    foreground, _ = await create(oai, model="mock-model", input="hi")
    refused = assert_error(await cancel(gateway, foreground.id), 400, "invalid_request")
    assert "background" in refused["message"]
    assert_error(await cancel(gateway, "resp_unknown"), 404, "response_not_found")
    assert (await oai.responses.retrieve(background.id)).status == "completed"
    assert (await oai.responses.retrieve(foreground.id)).status == "completed"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"store": False}, "store"), ({"stream": True}, "stream"), ({"background": "yes"}, "background")],
)
async def test_background_without_storage_or_with_a_stream_is_a_400(
    gateway: RunningGateway, worker: RunningWorker, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "mock-model", "input": "hi", "background": True} | extra
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        resp = await http.post("/v1/responses", json=body)
    assert_error(resp, 400, "invalid_request", param=param)
    assert worker.stats.chat_requests == 0


async def test_background_runs_past_the_limit_are_a_429_until_one_ends(
    bounded: RunningGateway, worker: RunningWorker
) -> None:
    worker.faults.hang = True
    async with client_of(bounded) as oai:
        first, _ = await create(oai, model="mock-model", input="one", background=True)
        async with httpx.AsyncClient(base_url=bounded.url, timeout=30) as http:
            body = {"model": "mock-model", "input": "two", "background": True}
            refused = await http.post("/v1/responses", json=body)
            assert_error(refused, 429, "background_limit_reached")
            assert refused.headers["retry-after"] == "1"
        await cancelled_by_the_client(oai, first.id)
        worker.faults.hang = False
        second, _ = await create(oai, model="mock-model", input="two", background=True)
        assert (await until_done(oai, second.id)).output_text == "echo: two"


async def test_cancel_cancels_the_in_flight_mcp_call_and_nothing_of_the_run_continues(
    bounded: RunningGateway, worker: RunningWorker, tmp_path: Path
) -> None:
    script, notes = tmp_path / "hold.py", tmp_path / "hold.notes"
    script.write_text(HOLD)
    hold = {
        "name": "hold",
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(script), str(notes)],
    }
    async with httpx.AsyncClient(base_url=bounded.url, timeout=60) as admin:
        assert (await admin.post("/mcp/servers", json=hold)).status_code == 201
    async with client_of(bounded) as oai:
        queued, _ = await create(
            oai,
            model="mock-model",
            input="CALL hold__wait {}\nNEXT\nCALL hold__wait {}",
            tools=[{"type": "mcp", "server_label": "hold", "require_approval": "never"}],
            background=True,
        )
        await eventually(lambda: notes.exists() and notes.read_text() == "started\n")
        cancelled = await cancelled_by_the_client(oai, queued.id)
        assert cancelled.status == "cancelled"
        await eventually(lambda: notes.read_text() == "started\nended\n")  # the server's call was cancelled
        assert worker.stats.chat_requests == 1  # the round after the call never ran
        # the run is over: its slot is free again, and the cancelled response stays cancelled
        again, _ = await create(oai, model="mock-model", input="next", background=True)
        assert (await until_done(oai, again.id)).status == "completed"
        assert (await oai.responses.retrieve(queued.id)).status == "cancelled"


async def test_deleting_a_running_background_response_cancels_it(
    gateway: RunningGateway, oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    worker.faults.hang = True
    queued, _ = await create(oai, model="mock-model", input="hi", background=True)
    await eventually(lambda: worker.stats.chat_requests == 1)
    deleted = await oai.responses.with_raw_response.delete(queued.id)
    assert deleted.http_response.status_code == 200
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        assert_error(await http.get(f"/v1/responses/{queued.id}"), 404, "response_not_found")
        assert_error(await http.post(f"/v1/responses/{queued.id}/cancel"), 404, "response_not_found")


@pytest.mark.e2e
def test_background_runs_a_gateway_process_left_unfinished_are_failed_after_it_restarts(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker = procs.worker("--hang")
    args = ("--worker-urls", worker, "--mcp-registry", str(tmp_path / "smg.db"))

    def started(gateway_url: str, text: str, running: int) -> str:
        with openai.OpenAI(base_url=gateway_url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
            queued = oai.responses.create(model="mock-model", input=text, background=True)
        assert queued.status == "queued"
        poll(lambda: httpx.get(worker + "/_smg/stats", timeout=10).json()["chat_requests"] == running)
        return queued.id

    killed = procs.gateway(*args)
    crashed = started(killed.url, "one", 1)
    killed.proc.kill()  # no shutdown at all: the run is left marked as running
    killed.proc.wait(10)
    graceful = procs.gateway(*args)
    shut_down = started(graceful.url, "two", 2)
    with openai.OpenAI(base_url=graceful.url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
        first = oai.responses.retrieve(crashed)
    assert (first.status, first.error.message if first.error else None) == ("failed", STOPPED)
    assert stop(graceful.proc) == 0  # SIGTERM: the run still going is cancelled and stored failed
    restarted = procs.gateway(*args)
    with openai.OpenAI(base_url=restarted.url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
        second = oai.responses.retrieve(shut_down)
        assert oai.responses.retrieve(crashed).status == "failed"
        raw = oai.responses.with_raw_response.retrieve(shut_down).http_response.json()
    Response.model_validate(raw)
    assert (second.status, second.error.message if second.error else None) == ("failed", SHUT_DOWN)
    assert second.error is not None and second.error.code == "server_error"


async def test_the_background_examples_of_the_responses_doc_run(
    gateway: RunningGateway, worker: RunningWorker
) -> None:
    section = DOC.read_text().partition("## Background responses")[2].partition("\n## ")[0]
    polled, cancelling = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30) as client:
        scope: dict[str, Any] = {"client": client}
        await asyncio.to_thread(exec, polled, scope)  # the doc's own code (blocking: off the loop)
        worker.faults.hang = True  # so that the second example finds its response running
        await asyncio.to_thread(exec, cancelling, scope)
    assert (scope["queued"].status, scope["response"].status) == ("queued", "completed")
    assert scope["response"].output_text == "echo: a long task"
    assert scope["cancelled"].status == "cancelled"


def test_the_store_fails_only_the_begun_responses_no_put_has_ended(tmp_path: Path) -> None:
    path = tmp_path / "smg.db"
    first = SqliteResponseStore(path)
    for rid in ("resp_ended", "resp_left"):
        first.begin(StoredResponse(rid, {"id": rid, "status": "queued"}, []))
    first.put(StoredResponse("resp_ended", {"id": "resp_ended", "status": "completed"}, []))
    first.put(StoredResponse("resp_plain", {"id": "resp_plain", "status": "completed"}, []))
    first.close()  # its gateway stopped
    again = SqliteResponseStore(path)  # as a gateway that starts on the same file
    assert again.fail_unfinished(lambda r: r | {"status": "failed"}) == ["resp_left"]
    assert [again.get(rid).response["status"] for rid in ("resp_ended", "resp_left", "resp_plain")] == [
        "completed",
        "failed",
        "completed",
    ]
    assert again.fail_unfinished(lambda r: r | {"status": "failed"}) == []


async def test_a_cancel_for_a_run_of_another_process_cancels_it_there_and_answers_it(tmp_path: Path) -> None:
    path = tmp_path / "smg.db"
    running_it = BackgroundRuns(SqliteResponseStore(path), limit=1)  # as two processes on one file
    elsewhere = BackgroundRuns(SqliteResponseStore(path), limit=1)
    called, cancelled = asyncio.Event(), asyncio.Event()

    async def respond(pending: dict[str, Any]) -> dict[str, Any]:
        called.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return pending

    request = parse_responses_request({"model": "mock-model", "input": "hold", "background": True})
    queued = await running_it.start(request, respond)
    rid = queued["id"]
    store = SqliteResponseStore(path)

    async def stored() -> dict[str, Any]:
        return (await asyncio.to_thread(store.get, rid)).response

    async with asyncio.timeout(30):
        await called.wait()
        answered = await elsewhere.cancel(rid, stored)
        assert cancelled.is_set()  # the run's call was cancelled where it ran
    assert (answered["id"], answered["status"]) == (rid, "cancelled")
    assert running_it.running == 0
    assert (await stored())["status"] == "cancelled"
    again = await elsewhere.cancel(rid, stored)  # idempotent, from either process
    assert again["status"] == "cancelled"
    assert (await running_it.cancel(rid, stored))["status"] == "cancelled"
    assert store.cancel_requests([rid]) == []  # the mark went with the run
    await running_it.aclose()
    await elsewhere.aclose()


async def test_a_cancel_from_another_process_of_a_run_that_finished_first_is_a_400(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "smg.db")
    store.begin(StoredResponse("resp_x", {"id": "resp_x", "background": True, "status": "queued"}, []))
    done = {"id": "resp_x", "background": True, "status": "completed"}
    store.put(StoredResponse("resp_x", done, []))  # it ended in its process
    stale = {"id": "resp_x", "background": True, "status": "in_progress"}  # as read just before
    reads = [stale]

    async def stored() -> dict[str, Any]:
        return reads.pop() if reads else store.get("resp_x").response

    with pytest.raises(InvalidRequest, match="already completed"):
        await BackgroundRuns(store, limit=1).cancel("resp_x", stored)
    assert store.get("resp_x").response["status"] == "completed"
