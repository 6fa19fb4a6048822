"""Stored responses through the official openai client: retrieve, delete, input items, store false,
previous_response_id chains, and a chain that survives a gateway restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseItemList

from smg.observability.metrics import Metrics
from smg.settings import McpSettings, ResponsesSettings
from smg.testing.gateway import RunningGateway, running_gateway
from smg.testing.worker import RunningWorker
from tests.conftest import make_settings
from tests.responses.conftest import client_of, create
from tests.responses.test_create import worker_requests


def text(item: Any) -> str:
    """The text of an input message item."""
    return str(item.content[0].text)


async def test_a_stored_response_is_retrieved_as_it_was_returned(
    oai: openai.AsyncOpenAI, gateway: RunningGateway
) -> None:
    response, body = await create(oai, model="mock-model", input="keep me", metadata={"k": "v"})
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        got = await c.get(f"/v1/responses/{response.id}")
    assert got.status_code == 200
    assert got.json() == body
    assert (await oai.responses.retrieve(response.id)).output_text == "echo: keep me"


async def test_store_false_keeps_nothing(oai: openai.AsyncOpenAI) -> None:
    response, body = await create(oai, model="mock-model", input="forget me", store=False)
    assert body["store"] is False
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.responses.retrieve(response.id)
    assert caught.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError) as continued:
        await oai.responses.create(model="mock-model", input="again", previous_response_id=response.id)
    assert continued.value.param == "previous_response_id"


async def test_delete_answers_the_deleted_object_then_the_id_is_unknown(
    oai: openai.AsyncOpenAI, gateway: RunningGateway
) -> None:
    response, _ = await create(oai, model="mock-model", input="short-lived")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        deleted = await c.delete(f"/v1/responses/{response.id}")
        assert deleted.status_code == 200
        assert deleted.json() == {"id": response.id, "object": "response", "deleted": True}
        again = await c.delete(f"/v1/responses/{response.id}")
    assert again.status_code == 404
    assert again.headers["x-smg-error-code"] == "response_not_found"
    assert set(again.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve(response.id)


async def test_input_items_are_listed_in_pages_in_either_order(
    oai: openai.AsyncOpenAI, gateway: RunningGateway
) -> None:
    texts = ["a", "b", "c", "d", "e"]
    response, _ = await create(oai, model="mock-model", input=[{"role": "user", "content": t} for t in texts])

    page = await oai.responses.input_items.list(response.id, limit=2, order="asc")
    assert [text(i) for i in page.data] == ["a", "b"]
    assert page.has_more is True
    rest = await oai.responses.input_items.list(response.id, limit=10, order="asc", after=page.data[-1].id)
    assert [text(i) for i in rest.data] == ["c", "d", "e"]
    assert rest.has_more is False
    newest_first = [text(i) async for i in oai.responses.input_items.list(response.id, limit=2)]
    assert newest_first == ["e", "d", "c", "b", "a"]  # the client follows the pages
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        raw = (await c.get(f"/v1/responses/{response.id}/input_items", params={"limit": 3})).json()
        ResponseItemList.model_validate(raw)
        assert (raw["object"], raw["first_id"], raw["has_more"]) == ("list", raw["data"][0]["id"], True)
        bad = await c.get(f"/v1/responses/{response.id}/input_items", params={"limit": 0})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "limit"


async def test_an_unknown_response_id_is_404_counted_under_the_route_template(
    oai: openai.AsyncOpenAI, metrics: Metrics
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.responses.input_items.list("resp_nothing")
    assert caught.value.code == "response_not_found"
    labels = {"path": "/v1/responses/{response_id}/input_items", "status_code": "404"}
    sample = metrics.registry.get_sample_value
    assert sample("smg_http_responses_total", labels | {"error_code": "response_not_found"}) == 1


async def test_store_operations_are_counted_in_the_storage_metrics(
    oai: openai.AsyncOpenAI, metrics: Metrics
) -> None:
    response, _ = await create(oai, model="mock-model", input="count me")
    await oai.responses.retrieve(response.id)
    sample = metrics.registry.get_sample_value
    for operation in ("response_put", "response_get"):
        labels = {"storage_type": "sqlite", "operation": operation, "result": "ok"}
        assert sample("smg_db_operations_total", labels) == 1
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve("resp_unknown")
    missing = {"storage_type": "sqlite", "operation": "response_get", "result": "response_not_found"}
    assert sample("smg_db_operations_total", missing) == 1


async def test_a_three_turn_chain_survives_a_gateway_restart(worker: RunningWorker, tmp_path: Path) -> None:
    settings = make_settings((worker.url,), mcp=McpSettings(registry_path=str(tmp_path / "smg.db")))
    async with running_gateway(settings) as first, client_of(first) as oai:
        one, _ = await create(oai, model="mock-model", input="turn one")
        two, _ = await create(oai, model="mock-model", input="turn two", previous_response_id=one.id)
    async with running_gateway(settings) as second, client_of(second) as oai:
        three, _ = await create(oai, model="mock-model", input="turn three", previous_response_id=two.id)
        assert three.output_text == "echo: turn three"
        listed = await oai.responses.input_items.list(three.id)
        assert [text(item) for item in listed.data] == ["turn three"]
    last = (await worker_requests(worker))[-1]["body"]
    assert isinstance(last, dict)
    assert last["messages"] == [
        {"role": "user", "content": "turn one"},
        {"role": "assistant", "content": "echo: turn one"},
        {"role": "user", "content": "turn two"},
        {"role": "assistant", "content": "echo: turn two"},
        {"role": "user", "content": "turn three"},
    ]


async def test_the_store_bounds_come_from_the_settings(worker: RunningWorker, tmp_path: Path) -> None:
    settings = make_settings(
        (worker.url,),
        mcp=McpSettings(registry_path=str(tmp_path / "smg.db")),
        responses=ResponsesSettings(max_stored=2),
    )
    async with running_gateway(settings) as gateway, client_of(gateway) as oai:
        ids = [(await create(oai, model="mock-model", input=f"turn {n}"))[0].id for n in range(3)]
        with pytest.raises(openai.NotFoundError):
            await oai.responses.retrieve(ids[0])  # the oldest went when the third was stored
        assert [(await oai.responses.retrieve(i)).id for i in ids[1:]] == ids[1:]
