"""``text.format`` on POST /v1/responses: validated (a 400 naming the key at fault), echoed as OpenAI does,
and sent to the worker as chat's ``response_format`` on every model round; structured output read back
by openai-python's ``responses.parse`` and openai-agents' ``output_type``, unmodified, against a gateway
process and the scripted worker scripted to reply with JSON."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from pydantic import BaseModel

from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from smg.testing.worker_script import parse_chat_request, plan_reply
from tests._helpers import assert_error
from tests._procs import Procs
from tests.responses.conftest import create
from tests.responses.test_create import worker_requests

DOC = Path(__file__).resolve().parents[2] / "docs" / "responses.md"
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
CITY = {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA, "strict": True}
PARIS = '{"city": "Paris", "population": 2102650}'


class City(BaseModel):
    city: str
    population: int


def test_the_scripted_worker_replies_with_the_text_of_a_reply_line() -> None:
    request = parse_chat_request(
        {"model": "m", "messages": [{"role": "user", "content": f"give me a city\nREPLY {PARIS}"}]}
    )
    assert plan_reply(request).content == PARIS


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("json_schema", "text"),
        ({"format": "json_object"}, "text.format"),
        ({"format": {"type": "xml"}}, "text.format.type"),
        ({"format": {"type": "json_schema", "schema": CITY_SCHEMA}}, "text.format.name"),
        ({"format": CITY | {"name": "a city"}}, "text.format.name"),
        ({"format": CITY | {"name": "x" * 65}}, "text.format.name"),
        ({"format": {"type": "json_schema", "name": "city"}}, "text.format.schema"),
        ({"format": CITY | {"schema": "object"}}, "text.format.schema"),
        ({"format": CITY | {"strict": "yes"}}, "text.format.strict"),
        ({"format": CITY | {"description": 3}}, "text.format.description"),
        ({"format": CITY | {"json_schema": {}}}, "text.format.json_schema"),
        ({"format": {"type": "json_object", "name": "x"}}, "text.format.name"),
        ({"format": {"type": "text"}, "verbosity": "low"}, "text.verbosity"),
        ({"format": {"type": "text"}, "stop": ["\n"]}, "text.stop"),
    ],
)
async def test_a_malformed_text_format_is_a_400_naming_the_key_and_reaches_no_worker(
    gateway: RunningGateway, worker: RunningWorker, text: Any, param: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        resp = await http.post("/v1/responses", json={"model": "mock-model", "input": "hi", "text": text})
    assert_error(resp, 400, "invalid_request", param=param)
    assert await worker_requests(worker) == []


async def test_without_a_format_the_response_echoes_text_and_the_worker_gets_none(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    _, body = await create(oai, model="mock-model", input="hi")
    assert body["text"] == {"format": {"type": "text"}}
    (sent,) = await worker_requests(worker)
    assert "response_format" not in sent["body"]  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["text", "json_object"])
async def test_text_and_json_object_formats_reach_the_worker_and_are_echoed(
    oai: openai.AsyncOpenAI, worker: RunningWorker, kind: str
) -> None:
    _, body = await create(oai, model="mock-model", input="hi", text={"format": {"type": kind}})
    assert body["text"] == {"format": {"type": kind}}
    (sent,) = await worker_requests(worker)
    assert sent["body"]["response_format"] == {"type": kind}  # type: ignore[index]


async def test_a_json_schema_format_is_sent_on_every_model_round_and_echoed(
    gateway: RunningGateway, oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    clock = {"name": "clock", "transport": "stdio", "command": sys.executable}
    clock["args"] = ["-m", "mcp_servers.clock", "--transport", "stdio"]  # type: ignore[assignment]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as admin:
        assert (await admin.post("/mcp/servers", json=clock)).status_code == 201
    described = CITY | {"description": "a city and its population"}
    response, body = await create(
        oai,
        model="mock-model",
        input=f'CALL clock__now {{"timezone": "UTC"}}\nREPLY {PARIS}',
        tools=[{"type": "mcp", "server_label": "clock", "require_approval": "never"}],
        text={"format": described},
    )
    assert [item["type"] for item in body["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert response.output_text == PARIS
    assert body["text"] == {"format": described}
    rounds = await worker_requests(worker)
    assert len(rounds) == 2
    expected = {
        "name": "city",
        "schema": CITY_SCHEMA,
        "strict": True,
        "description": described["description"],
    }
    for sent in rounds:
        assert sent["body"]["response_format"] == {"type": "json_schema", "json_schema": expected}  # type: ignore[index]


async def test_a_json_schema_format_without_strict_or_description_sends_only_what_was_given(
    oai: openai.AsyncOpenAI, worker: RunningWorker
) -> None:
    given = {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA}
    _, body = await create(oai, model="mock-model", input=f"REPLY {PARIS}", text={"format": given})
    assert body["text"] == {"format": given | {"description": None, "strict": False}}
    (sent,) = await worker_requests(worker)
    assert sent["body"]["response_format"] == {  # type: ignore[index]
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": CITY_SCHEMA},
    }


@pytest.mark.e2e
def test_openai_python_parse_gives_the_typed_output(procs: Procs) -> None:
    _, worker = procs.worker()
    gateway = procs.gateway("--worker-urls", worker)
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
        parsed = oai.responses.parse(model="mock-model", input=f"a city\nREPLY {PARIS}", text_format=City)
    assert parsed.output_parsed == City(city="Paris", population=2102650)
    sent = httpx.get(worker + "/_smg/requests", timeout=10).json()[-1]["body"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "City"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "population"]


@pytest.mark.e2e
async def test_an_openai_agents_agent_with_an_output_type_gets_a_typed_final_output(procs: Procs) -> None:
    set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI's platform
    _, worker = procs.worker()
    gateway = procs.gateway("--worker-urls", worker)
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0) as client:
        model = OpenAIResponsesModel(model="mock-model", openai_client=client)
        agent = Agent(name="geographer", model=model, output_type=City)
        result = await Runner.run(agent, f"a city\nREPLY {PARIS}")
    assert result.final_output == City(city="Paris", population=2102650)
    async with httpx.AsyncClient(timeout=10) as http:
        sent = (await http.get(worker + "/_smg/requests")).json()[-1]["body"]
    schema = sent["response_format"]["json_schema"]
    assert (sent["response_format"]["type"], schema["strict"]) == ("json_schema", True)
    assert json.loads(PARIS).keys() == schema["schema"]["properties"].keys()


async def test_the_structured_output_example_of_the_responses_doc_runs(gateway: RunningGateway) -> None:
    section = DOC.read_text().partition("## Structured output")[2].partition("\n## ")[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30) as client:
        scope: dict[str, Any] = {"client": client}
        await asyncio.to_thread(exec, example, scope)  # the doc's own code (blocking: off the loop)
    assert scope["parsed"].output_parsed.model_dump() == {"city": "Paris", "population": 2102650}
