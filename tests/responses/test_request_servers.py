"""MCP servers a Responses request defines itself (an ``mcp`` tool with ``server_url``): allowed only by
``--mcp-request-servers`` on a host ``--mcp-allowed-hosts`` allows, connected for that request alone,
run on the same tool loop, and their secrets sent to that server only: never stored, logged, echoed or
made a metric label. Real processes on 127.0.0.1: the gateway, the scripted worker, MCP servers that
record the headers they receive and count their open connections; openai-python unmodified."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import READY_PREFIX as WORKER_READY
from tests._procs import Gateway, poll

pytestmark = pytest.mark.e2e

TOKEN = "tok-4f1c9a7e-secret"  # the authorization value
KEY = "hdr-8d2b6c31-secret"  # a header value
DOC = Path(__file__).resolve().parents[2] / "docs" / "responses.md"


@dataclass
class Env:
    worker: str
    mine: str  # the MCP server requests define (URL)
    other: str  # a registered MCP server, "reg" (URL)
    gateway: Gateway
    log: Path
    db: Path


def _mcp_server() -> tuple[subprocess.Popen[str], str]:
    proc = spawn([sys.executable, "-m", "tests.responses.recording_mcp"], stderr=subprocess.DEVNULL)
    return proc, wait_for_line(proc, "MCP_SERVER_READY")


def _gateway(log: Path, *args: str) -> tuple[subprocess.Popen[str], Gateway]:
    cmd = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0"]
    with log.open("w") as sink:
        proc = spawn([*cmd, *args], stderr=sink.fileno())
    url, _, metrics = wait_for_line(proc, GATEWAY_READY).partition(" (metrics ")
    return proc, Gateway(proc=proc, url=url, metrics_url=metrics.rstrip(")"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway that allows request-defined servers on 127.0.0.1, logging at debug level to a file;
    the scripted worker; two recording MCP servers, one registered as ``reg``. Stopped by PID."""
    tmp = tmp_path_factory.mktemp("request-servers")
    started: list[subprocess.Popen[str]] = []
    try:
        worker = spawn([sys.executable, "-m", "smg.testing.worker", "--host", "127.0.0.1", "--port", "0"])
        started.append(worker)
        worker_url = wait_for_line(worker, WORKER_READY)
        mine_proc, mine = _mcp_server()
        other_proc, other = _mcp_server()
        started += [mine_proc, other_proc]
        db, log = tmp / "smg.db", tmp / "gateway.log"
        args = ["--worker-urls", worker_url, "--mcp-registry", str(db), "--log-level", "debug"]
        proc, gateway = _gateway(log, *args, "--mcp-request-servers", "--mcp-allowed-hosts", "127.0.0.1")
        started.append(proc)
        registered = {"name": "reg", "transport": "streamable-http", "url": other}
        assert httpx.post(gateway.url + "/mcp/servers", json=registered, timeout=60).status_code == 201
        yield Env(worker_url, mine, other, gateway, log, db)
    finally:
        for proc in reversed(started):
            stop(proc)


def seen(url: str) -> dict[str, Any]:
    """What a recording server saw: ``headers`` of every request to /mcp, ``open`` connections now."""
    body: dict[str, Any] = httpx.get(url.replace("/mcp", "/_seen"), timeout=10).json()
    return body


def closed(url: str) -> bool:
    """Whether no connection to the server is open (waited for, bounded: the close is a TCP exchange)."""
    return bool(poll(lambda: seen(url)["open"] == 0, timeout=10))


@pytest.fixture
def oai(env: Env) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=env.gateway.url + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


def mine(env: Env, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "mine",
        "server_url": env.mine,
        "require_approval": "never",
        **extra,
    }


def create(oai: openai.OpenAI, **params: Any) -> tuple[Response, dict[str, Any]]:
    raw = oai.responses.with_raw_response.create(**params)
    body: dict[str, Any] = raw.http_response.json()
    Response.model_validate(body)  # strictly openai-python's shape
    return raw.parse(), body


def refused(oai: openai.OpenAI, **params: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(openai.APIStatusError) as info:
        oai.responses.create(**params)
    error: dict[str, Any] = info.value.response.json()["error"]
    return info.value.status_code, error


def test_a_request_server_is_listed_called_and_closed_when_the_response_is_sent(
    env: Env, oai: openai.OpenAI
) -> None:
    before = len(seen(env.mine)["headers"])
    tools = [mine(env, headers={"X-Api-Key": KEY, "X-Team": "blue"}, authorization=TOKEN)]
    response, body = create(oai, model="mock-model", input='CALL mine__echo {"text": "hi"}', tools=tools)
    listed, call, _ = body["output"]
    assert (listed["type"], listed["server_label"]) == ("mcp_list_tools", "mine")
    assert {t["name"] for t in listed["tools"]} == {"echo", "write", "fail", "meet", "hang"}
    assert (call["type"], call["server_label"], call["name"], call["output"]) == (
        "mcp_call",
        "mine",
        "echo",
        "echo: hi",
    )
    assert response.output_text == "tool results: echo: hi"
    requests = seen(env.mine)["headers"][before:]
    assert requests  # the server was contacted, and every request carried the request's headers
    assert all(h["authorization"] == f"Bearer {TOKEN}" and h["x-api-key"] == KEY for h in requests)
    assert closed(env.mine)


def test_the_echoed_and_stored_tools_keep_no_secret(env: Env, oai: openai.OpenAI) -> None:
    tools = [mine(env, headers={"X-Api-Key": KEY}, authorization=TOKEN)]
    response, body = create(oai, model="mock-model", input="hello", tools=tools)
    assert body["tools"][0]["headers"] == {"X-Api-Key": "***"}
    assert "authorization" not in body["tools"][0]
    assert body["tools"][0]["server_url"] == env.mine
    stored = oai.responses.retrieve(response.id)
    assert stored.tools[0].headers == {"X-Api-Key": "***"}  # type: ignore[union-attr]
    assert TOKEN not in stored.model_dump_json() and KEY not in stored.model_dump_json()


def test_secrets_reach_no_database_log_metric_or_other_server(env: Env, oai: openai.OpenAI) -> None:
    tools = [
        mine(env, headers={"X-Api-Key": KEY}, authorization=TOKEN),
        {"type": "mcp", "server_label": "reg"},
    ]
    script = 'CALL mine__echo {"text": "a"}\nCALL reg__echo {"text": "b"}'
    response, _ = create(oai, model="mock-model", input=script, tools=tools)
    assert [i.type for i in response.output].count("mcp_call") == 2
    assert closed(env.mine)
    files = sorted(env.db.parent.glob(env.db.name + "*"))  # the database and its -wal / -shm files
    assert files
    for path in files:
        data = path.read_bytes()
        assert TOKEN.encode() not in data and KEY.encode() not in data, path
    log = env.log.read_text()
    assert "DEBUG" in log  # the log is at debug level, and still holds neither value
    assert TOKEN not in log and KEY not in log
    for headers in seen(env.other)["headers"]:  # the registered server never got them
        assert TOKEN not in str(headers) and KEY not in str(headers)
    metrics = httpx.get(env.gateway.metrics_url, timeout=10).text
    assert TOKEN not in metrics and KEY not in metrics
    assert env.gateway.metric("smg_mcp_tool_calls_total", server="(request)", tool_name="(request)") >= 1
    assert env.gateway.metric("smg_mcp_tool_calls_total", server="mine") == 0  # no label per request name
    assert env.gateway.metric("smg_mcp_tool_calls_total", server="reg", tool_name="echo") >= 1


def test_a_header_value_is_sent_as_written_never_expanded_from_the_gateway_environment(
    env: Env, oai: openai.OpenAI
) -> None:
    before = len(seen(env.mine)["headers"])
    create(oai, model="mock-model", input="hello", tools=[mine(env, headers={"X-Path": "${PATH}"})])
    assert {h["x-path"] for h in seen(env.mine)["headers"][before:]} == {"${PATH}"}


def test_a_round_runs_in_parallel_and_failures_are_results(env: Env, oai: openai.OpenAI) -> None:
    script = "\n".join(['CALL mine__meet {"key": "round-1", "n": 2}'] * 2 + ["CALL mine__fail {}"])
    response, body = create(oai, model="mock-model", input=script, tools=[mine(env)])
    calls = [i for i in body["output"] if i["type"] == "mcp_call"]
    assert [c["output"] for c in calls[:2]] == ["met", "met"]  # both were in progress at once
    assert calls[2]["status"] == "failed" and "always fails" in calls[2]["error"]["content"][0]["text"]
    assert response.status == "completed"
    assert closed(env.mine)


def test_allowed_tools_and_read_only_filter_a_request_server(env: Env, oai: openai.OpenAI) -> None:
    entry = mine(env, allowed_tools={"tool_names": ["echo", "write", "fail"], "read_only": True})
    _, body = create(oai, model="mock-model", input="hello", tools=[entry])
    assert {t["name"] for t in body["output"][0]["tools"]} == {"echo", "fail"}


def test_an_approval_runs_on_the_server_the_follow_up_defines(env: Env, oai: openai.OpenAI) -> None:
    entry = mine(env, require_approval="always", authorization=TOKEN)
    held, _ = create(oai, model="mock-model", input='CALL mine__write {"text": "x"}', tools=[entry])
    request = held.output[-1]
    assert (request.type, request.server_label, request.name) == ("mcp_approval_request", "mine", "write")  # type: ignore[union-attr]
    assert closed(env.mine)
    answer = [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]
    status, error = refused(oai, model="mock-model", previous_response_id=held.id, input=answer)
    assert (status, error["param"]) == (400, "input")
    assert "mine" in error["message"] and "server_url" in error["message"]
    # The follow-up's entry points the label at the other server: the approved call runs there.
    moved = mine(env, server_url=env.other, require_approval="always", authorization="tok-2")
    before, pooled = len(seen(env.other)["headers"]), seen(env.other)["open"]  # the gateway's own, for "reg"
    resumed, _ = create(oai, model="mock-model", previous_response_id=held.id, input=answer, tools=[moved])
    call = resumed.output[0]
    assert (call.type, call.approval_request_id, call.output) == ("mcp_call", request.id, "wrote: x")  # type: ignore[union-attr]
    assert {h["authorization"] for h in seen(env.other)["headers"][before:]} == {"Bearer tok-2"}
    assert poll(lambda: seen(env.other)["open"] == pooled, timeout=10)  # this request's one is closed


def test_an_error_after_connecting_closes_the_connection(env: Env, oai: openai.OpenAI) -> None:
    before = len(seen(env.mine)["headers"])
    status, error = refused(oai, model="no-such-model", input="hello", tools=[mine(env)])
    assert (status, error["code"]) == (404, "model_not_found")
    assert len(seen(env.mine)["headers"]) > before  # it had connected
    assert closed(env.mine)


def test_a_streamed_response_uses_the_request_server_and_closes_it(env: Env, oai: openai.OpenAI) -> None:
    with oai.responses.stream(
        model="mock-model",
        input='CALL mine__echo {"text": "s"}',
        tools=[mine(env)],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_response()
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert closed(env.mine)


@pytest.mark.parametrize(
    ("entry", "status", "code", "param"),
    [
        ({"server_label": "reg"}, 400, "invalid_request", "tools[0].server_label"),  # a registered name
        ({"server_url": "http://localhost:{port}/mcp"}, 403, "mcp_host_not_allowed", "tools[0].server_url"),
        ({"server_url": "ftp://127.0.0.1/mcp"}, 400, "invalid_request", "tools[0].server_url"),
        ({"headers": {"Host": "x"}}, 400, "invalid_request", "tools[0].headers.Host"),
        (
            {"headers": {"Authorization": "a"}, "authorization": "b"},
            400,
            "invalid_request",
            "tools[0].authorization",
        ),
        ({"connector_id": "connector_gmail"}, 400, "invalid_request", "tools[0].connector_id"),
    ],
)
def test_refused_definitions_name_the_field_and_contact_nothing(
    env: Env, oai: openai.OpenAI, entry: dict[str, Any], status: int, code: str, param: str
) -> None:
    port = httpx.URL(env.mine).port
    entry = {k: v.format(port=port) if isinstance(v, str) else v for k, v in entry.items()}
    before = len(seen(env.mine)["headers"])
    got, error = refused(oai, model="mock-model", input="hello", tools=[mine(env, **entry)])
    assert (got, error["code"], error["param"]) == (status, code, param)
    assert len(seen(env.mine)["headers"]) == before


def test_headers_without_a_server_url_are_refused(oai: openai.OpenAI) -> None:
    tools = [{"type": "mcp", "server_label": "reg", "headers": {"X": "y"}}]
    status, error = refused(oai, model="mock-model", input="hello", tools=tools)
    assert (status, error["param"]) == (400, "tools[0].headers")


def test_a_server_that_cannot_be_reached_is_a_502_naming_its_url(oai: openai.OpenAI) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        tools = [{"type": "mcp", "server_label": "gone", "server_url": url}]
        status, error = refused(oai, model="mock-model", input="hello", tools=tools)
    assert (status, error["code"], error["param"]) == (502, "mcp_server_unreachable", "tools[0].server_url")


def test_a_gateway_without_the_switch_refuses_a_server_url(env: Env, tmp_path: Path) -> None:
    proc, gateway = _gateway(
        tmp_path / "off.log", "--worker-urls", env.worker, "--mcp-registry", str(tmp_path / "off.db")
    )
    try:
        before = len(seen(env.mine)["headers"])
        with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30) as oai:
            tools = [{"type": "mcp", "server_label": "mine", "server_url": env.mine}]
            status, error = refused(oai, model="mock-model", input="hello", tools=tools)
        assert (status, error["code"], error["param"]) == (
            400,
            "mcp_request_servers_disabled",
            "tools[0].server_url",
        )
        assert "--mcp-request-servers" in error["message"]
        assert len(seen(env.mine)["headers"]) == before
    finally:
        stop(proc)


def test_the_example_of_the_responses_doc_runs(env: Env, oai: openai.OpenAI) -> None:
    section = DOC.read_text().partition("## Request-defined MCP servers")[2].partition("\n## ")[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    scope: dict[str, Any] = {"client": oai}
    exec(block.replace("https://mcp.example.internal/mcp", env.mine), scope)  # the doc's own code
    assert [item.type for item in scope["response"].output] == ["mcp_list_tools", "mcp_call", "message"]
    assert scope["response"].tools[0].headers == {"X-Team": "***"}
    assert closed(env.mine)
