"""The MCP admin API through an in-process gateway, with real MCP servers as processes on 127.0.0.1:
every endpoint, its refusals, admin-key auth, secret redaction, offline registry edits, ``required``
servers that go down, and the MCP metrics."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_servers.faults import LONG_TOOL_NAME
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.store import SqliteRegistry
from smg.observability.metrics import Metrics
from smg.settings import AuthSettings, McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import pid_alive, spawn, stop, wait_for_line
from smg.testing.worker import RunningWorker
from tests._helpers import CALC, assert_error, closed_port_url, sample
from tests.conftest import make_settings

MCP_READY = "MCP_SERVER_READY"
POLL_SECS = 60.0
EXPOSED_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

StartGateway = Callable[..., Awaitable[RunningGateway]]


def _spawn_faults() -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "mcp_servers.faults", "--transport", "streamable-http", "--port", "0"]
    proc = spawn(args)
    try:
        return proc, wait_for_line(proc, MCP_READY)
    except BaseException:
        stop(proc)
        raise


@pytest.fixture(scope="module")
def faults_url() -> Iterator[str]:
    """One faults server over streamable HTTP, shared by this module (its tools never change here)."""
    proc, url = _spawn_faults()
    try:
        yield url
    finally:
        stop(proc)


def _faults(url: str, name: str = "faults", **extra: Any) -> dict[str, Any]:
    return {"name": name, "transport": "streamable-http", "url": url, **extra}


async def _poll(check: Callable[[], Awaitable[Any]], *, limit_secs: float = POLL_SECS) -> Any:
    """Await ``check()`` until it returns a truthy value; TimeoutError after ``limit_secs`` seconds."""
    async with asyncio.timeout(limit_secs):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


async def _servers(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    resp = await http.get("/mcp/servers")
    assert resp.status_code == 200, resp.text
    return {s["name"]: s for s in resp.json()["servers"]}


async def _connected(http: httpx.AsyncClient, *names: str) -> dict[str, dict[str, Any]]:
    async def check() -> dict[str, dict[str, Any]] | None:
        servers = await _servers(http)
        ok = all(n in servers and (servers[n]["status"] or {}).get("state") == "connected" for n in names)
        return servers if ok else None

    found: dict[str, dict[str, Any]] = await _poll(check)
    return found


def _loop_body(script: str, *servers: str) -> dict[str, Any]:
    return {
        "model": "mock-model",
        "messages": [{"role": "user", "content": script}],
        "tools": [{"type": "mcp", "server_label": s, "require_approval": "never"} for s in servers],
    }


async def _http(stack: AsyncExitStack, gw: RunningGateway, **kwargs: Any) -> httpx.AsyncClient:
    return await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=60, **kwargs))


@pytest.fixture
async def http(
    worker: RunningWorker, start_gateway: StartGateway, faults_url: str, stack: AsyncExitStack
) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of a gateway serving ``faults`` (streamable HTTP) and ``calc`` (stdio), connected."""
    gw = await start_gateway(make_settings((worker.url,)))
    client = await _http(stack, gw)
    for server in (_faults(faults_url), CALC):
        resp = await client.post("/mcp/servers", json=server)
        assert resp.status_code == 201, resp.text
    await _connected(client, "faults", "calc")
    yield client


# --- every endpoint ---------------------------------------------------------------------------------


async def test_server_list_shows_each_spec_with_its_live_status(
    http: httpx.AsyncClient, faults_url: str
) -> None:
    servers = await _servers(http)
    assert sorted(servers) == ["calc", "faults"]
    faults, calc = servers["faults"], servers["calc"]
    assert (faults["transport"], faults["url"], faults["required"]) == ("streamable-http", faults_url, False)
    assert faults["status"]["state"] == "connected"
    assert faults["status"]["tools"] >= 10
    assert faults["status"]["pid"] is None
    assert calc["command"] == sys.executable and calc["args"] == CALC["args"]
    assert calc["status"]["tools"] >= 1
    assert isinstance(calc["status"]["pid"], int) and pid_alive(calc["status"]["pid"])


async def test_one_server_lists_its_tools_under_provider_safe_exposed_names(http: httpx.AsyncClient) -> None:
    resp = await http.get("/mcp/servers/faults")
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == "faults" and body["status"]["state"] == "connected"
    exposed = {t["name"]: t["exposed_name"] for t in body["tools"]}
    assert exposed["echo"] == "faults__echo"
    long_exposed = exposed[LONG_TOOL_NAME]
    assert len(long_exposed) <= 64 and EXPOSED_RE.match(long_exposed)
    assert all(EXPOSED_RE.match(name) for name in exposed.values())


async def test_refresh_lists_the_tools_again_from_the_server(
    http: httpx.AsyncClient, metrics: Metrics
) -> None:
    before = sample(metrics, "smg_mcp_tool_list_refreshes_total", server="faults", reason="request") or 0.0
    resp = await http.post("/mcp/servers/faults/refresh")
    assert resp.status_code == 200
    names = {t["name"] for t in resp.json()["tools"]}
    assert {"echo", LONG_TOOL_NAME} <= names
    after = sample(metrics, "smg_mcp_tool_list_refreshes_total", server="faults", reason="request")
    assert after == before + 1


async def test_a_tool_can_be_test_called_by_its_original_name(http: httpx.AsyncClient) -> None:
    resp = await http.post("/mcp/servers/calc/tools/evaluate/call", json={"arguments": {"expression": "2+2"}})
    assert resp.status_code == 200
    body = resp.json()
    assert (body["server"], body["tool"], body["status"], body["text"]) == ("calc", "evaluate", "ok", "4")
    resp = await http.post(
        f"/mcp/servers/faults/tools/{LONG_TOOL_NAME}/call", json={"arguments": {"text": "long-echo"}}
    )
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["text"]) == ("ok", "long-echo")


async def test_test_calling_a_tool_of_an_unknown_server_is_not_found(http: httpx.AsyncClient) -> None:
    resp = await http.post("/mcp/servers/nope/tools/echo/call", json={"arguments": {}})
    assert_error(resp, 404, "mcp_server_not_found")


async def test_tool_listing_covers_every_server(http: httpx.AsyncClient) -> None:
    resp = await http.get("/mcp/tools")
    assert resp.status_code == 200
    pairs = {(t["server"], t["name"]): t["exposed_name"] for t in resp.json()["tools"]}
    assert pairs[("calc", "evaluate")] == "calc__evaluate"
    assert ("faults", LONG_TOOL_NAME) in pairs


async def test_check_reports_every_server_ok(http: httpx.AsyncClient) -> None:
    resp = await http.get("/mcp/check")
    assert resp.status_code == 200
    checks = {c["name"]: c for c in resp.json()["servers"]}
    assert sorted(checks) == ["calc", "faults"]
    for check in checks.values():
        assert (check["ok"], check["state"], check["error"]) == (True, "connected", None)
        assert check["tools"] >= 1


async def test_a_removed_server_is_gone_and_its_stdio_child_stops(http: httpx.AsyncClient) -> None:
    pid = (await _servers(http))["calc"]["status"]["pid"]
    resp = await http.delete("/mcp/servers/calc")
    assert resp.status_code == 200
    assert resp.json() == {"removed": "calc"}
    assert_error(await http.get("/mcp/servers/calc"), 404, "mcp_server_not_found")
    assert_error(await http.delete("/mcp/servers/calc"), 404, "mcp_server_not_found")
    assert sorted(await _servers(http)) == ["faults"]

    async def child_gone() -> bool:
        return not pid_alive(pid)

    await _poll(child_gone, limit_secs=15)


async def test_a_dry_run_reports_findings_and_saves_nothing(http: httpx.AsyncClient, faults_url: str) -> None:
    before = sorted(await _servers(http))
    resp = await http.post("/mcp/servers", json={**_faults(faults_url, "faults2"), "dry_run": True})
    assert resp.status_code == 200
    body = resp.json()
    assert body["saved"] is False
    assert body["server"]["name"] == "faults2" and body["server"]["status"] is None
    kinds = {f["kind"] for f in body["findings"]}
    assert "reachable" in kinds and "shortened" in kinds
    assert not any(f["blocking"] for f in body["findings"])
    assert sorted(await _servers(http)) == before
    assert_error(await http.get("/mcp/servers/faults2"), 404, "mcp_server_not_found")


async def test_a_taken_name_is_a_registration_conflict(http: httpx.AsyncClient, faults_url: str) -> None:
    assert_error(await http.post("/mcp/servers", json=_faults(faults_url)), 409, "mcp_registration_conflict")


async def test_an_unreachable_server_is_refused_and_nothing_is_saved(http: httpx.AsyncClient) -> None:
    before = sorted(await _servers(http))
    resp = await http.post("/mcp/servers", json=_faults(closed_port_url() + "/mcp", "ghost"))
    assert_error(resp, 400, "mcp_registration_refused")
    assert sorted(await _servers(http)) == before


async def test_a_stdio_spec_without_a_command_is_an_invalid_config(http: httpx.AsyncClient) -> None:
    resp = await http.post("/mcp/servers", json={"name": "broken", "transport": "stdio"})
    assert_error(resp, 400, "invalid_mcp_config", param="command")


async def test_a_malformed_json_body_is_invalid_json(http: httpx.AsyncClient) -> None:
    resp = await http.post(
        "/mcp/servers", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    assert_error(resp, 400, "invalid_json")


# --- admin auth -------------------------------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/mcp/servers"),
    ("POST", "/mcp/servers"),
    ("GET", "/mcp/servers/x"),
    ("DELETE", "/mcp/servers/x"),
    ("POST", "/mcp/servers/x/refresh"),
    ("POST", "/mcp/servers/x/tools/t/call"),
    ("GET", "/mcp/tools"),
    ("GET", "/mcp/check"),
]


async def test_the_mcp_admin_api_wants_the_admin_key(
    worker: RunningWorker, start_gateway: StartGateway, stack: AsyncExitStack
) -> None:
    auth = AuthSettings(api_keys=("d",), admin_api_keys=("a",))
    gw = await start_gateway(make_settings((worker.url,), auth=auth))
    http = await _http(stack, gw)
    for method, path in ADMIN_CALLS:
        assert_error(await http.request(method, path), 401, "invalid_api_key")
        data = {"Authorization": "Bearer d"}
        assert_error(await http.request(method, path, headers=data), 403, "forbidden")
        resp = await http.request(method, path, headers={"Authorization": "Bearer a"}, json={})
        assert resp.status_code not in (401, 403), (method, path)
    resp = await http.get("/mcp/servers", headers={"x-api-key": "a"})
    assert resp.status_code == 200 and resp.json() == {"servers": []}


# --- secrets ----------------------------------------------------------------------------------------

LITERAL_SECRET = "sk-literal-secret-123"
TOKEN_VALUE = "tok-env-value-5f3a9c"


async def test_header_secrets_never_appear_in_responses_or_logs(
    worker: RunningWorker,
    start_gateway: StartGateway,
    stack: AsyncExitStack,
    faults_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SMG_TEST_TOKEN", TOKEN_VALUE)
    caplog.set_level(logging.DEBUG, logger="smg")
    gw = await start_gateway(make_settings((worker.url,)))
    http = await _http(stack, gw)
    headers = {"Authorization": f"Bearer {LITERAL_SECRET}", "X-Api-Token": "${SMG_TEST_TOKEN}"}
    spec = _faults(faults_url, "secretive", headers=headers)
    bodies: list[str] = []

    dry = await http.post("/mcp/servers", json={**spec, "dry_run": True})
    assert dry.status_code == 200
    added = await http.post("/mcp/servers", json=spec)
    assert added.status_code == 201
    assert added.json()["server"]["headers"] == {"Authorization": "***", "X-Api-Token": "${SMG_TEST_TOKEN}"}
    await _connected(http, "secretive")
    conflict = await http.post("/mcp/servers", json=spec)
    assert_error(conflict, 409, "mcp_registration_conflict")
    refused = await http.post("/mcp/servers", json={**spec, "name": "ghost", "url": closed_port_url()})
    assert_error(refused, 400, "mcp_registration_refused")
    bodies += [r.text for r in (dry, added, conflict, refused)]
    for path in ("/mcp/servers", "/mcp/servers/secretive", "/mcp/tools", "/mcp/check"):
        resp = await http.get(path)
        assert resp.status_code == 200
        bodies.append(resp.text)
    bodies.append((await http.post("/mcp/servers/secretive/refresh")).text)
    called = await http.post("/mcp/servers/secretive/tools/echo/call", json={"arguments": {"text": "hi"}})
    assert called.json()["status"] == "ok"
    bodies.append(called.text)

    logged = caplog.text + "".join(repr(r.args) + repr(r.__dict__) for r in caplog.records)
    for secret in (LITERAL_SECRET, TOKEN_VALUE):
        assert all(secret not in body for body in bodies)
        assert secret not in logged
    assert "${SMG_TEST_TOKEN}" in added.text


async def test_a_header_naming_an_unset_variable_is_refused_and_not_saved(
    http: httpx.AsyncClient, faults_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMG_TEST_UNSET_TOKEN", raising=False)
    spec = _faults(faults_url, "unset", headers={"X-Api-Token": "${SMG_TEST_UNSET_TOKEN}"})
    error = assert_error(await http.post("/mcp/servers", json=spec), 400, "mcp_registration_refused")
    assert "SMG_TEST_UNSET_TOKEN" in error["message"]  # the variable is named, so the fix is obvious
    assert "unset" not in await _servers(http)


# --- offline registry edits -------------------------------------------------------------------------


async def test_an_offline_registry_edit_reaches_a_running_gateway(
    worker: RunningWorker,
    start_gateway: StartGateway,
    stack: AsyncExitStack,
    faults_url: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.db"
    mcp = McpSettings(registry_path=str(path), registry_poll_secs=0.1)
    gw = await start_gateway(make_settings((worker.url,), mcp=mcp))
    http = await _http(stack, gw)
    assert await _servers(http) == {}

    SqliteRegistry(path).add(ServerSpec(name="offline", transport="streamable-http", url=faults_url))
    await _connected(http, "offline")
    resp = await http.post(
        "/v1/chat/completions", json=_loop_body('CALL offline__echo {"text": "edited offline"}', "offline")
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [(c["server"], c["tool"], c["status"]) for c in body["smg"]["tool_calls"]] == [
        ("offline", "echo", "ok")
    ]
    assert "edited offline" in body["choices"][0]["message"]["content"]

    SqliteRegistry(path).remove("offline")

    async def gone() -> bool:
        return "offline" not in await _servers(http)

    await _poll(gone)
    resp = await http.post("/v1/chat/completions", json=_loop_body("hello", "offline"))
    assert_error(resp, 400, "invalid_request", param="tools[0].server_label")


# --- a required server that goes down ---------------------------------------------------------------


@pytest.fixture
async def fragile_down(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """``http``'s gateway with ``fragile`` (a faults server registered ``required``) stopped by PID, once
    the gateway has noticed (a test call failed and the session is no longer ``connected``)."""
    proc, url = _spawn_faults()
    try:
        resp = await http.post("/mcp/servers", json=_faults(url, "fragile", required=True))
        assert resp.status_code == 201, resp.text
        await _connected(http, "fragile")
        body = _loop_body('CALL fragile__echo {"text": "a"}', "fragile")
        ok = await http.post("/v1/chat/completions", json=body)
        assert ok.status_code == 200, ok.text
    finally:
        stop(proc)
    call = await http.post("/mcp/servers/fragile/tools/echo/call", json={"arguments": {"text": "b"}})
    assert call.json()["status"] == "unavailable"

    async def noticed() -> bool:
        status: dict[str, Any] | None = (await _servers(http))["fragile"]["status"]
        return status is None or status["state"] != "connected"

    await _poll(noticed)
    return http


async def test_a_required_server_that_is_down_fails_its_requests_and_spares_the_others(
    fragile_down: httpx.AsyncClient,
) -> None:
    http = fragile_down

    async def refused() -> httpx.Response | None:
        body = _loop_body('CALL fragile__echo {"text": "c"}', "fragile")
        resp = await http.post("/v1/chat/completions", json=body)
        return resp if resp.status_code == 503 else None

    assert_error(await _poll(refused), 503, "mcp_server_unavailable")
    body = _loop_body('CALL faults__echo {"text": "d"}', "faults")
    other = await http.post("/v1/chat/completions", json=body)
    assert other.status_code == 200, other.text
    assert [c["status"] for c in other.json()["smg"]["tool_calls"]] == ["ok"]
    checks = {c["name"]: c for c in (await http.get("/mcp/check")).json()["servers"]}
    assert [name for name, c in sorted(checks.items()) if c["ok"]] == ["calc", "faults"]
    assert checks["fragile"]["error"]
    tools = await http.get("/mcp/tools")
    assert tools.status_code == 200
    assert {t["server"] for t in tools.json()["tools"]} == {"calc", "faults"}


async def test_a_down_required_server_does_not_block_registering_another(
    fragile_down: httpx.AsyncClient, faults_url: str
) -> None:
    resp = await fragile_down.post("/mcp/servers", json=_faults(faults_url, "another"))
    assert resp.status_code == 201, resp.text
    kinds = {f["kind"] for f in resp.json()["findings"]}
    assert "unchecked" in kinds  # fragile's tools are unknown, so collisions with it were not checked


# --- metrics ----------------------------------------------------------------------------------------


async def test_a_tool_loop_is_counted_in_the_mcp_metrics(http: httpx.AsyncClient, metrics: Metrics) -> None:
    script = 'CALL faults__echo {"text": "counted"}'
    resp = await http.post("/v1/chat/completions", json=_loop_body(script, "faults"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["smg"]["stop_reason"] == "completed"
    calls = sample(
        metrics,
        "smg_mcp_tool_calls_total",
        server="faults",
        tool_name="echo",
        result="success",
        outcome="ok",
        caller="loop",
    )
    assert calls is not None and calls >= 1
    iterations = sample(metrics, "smg_mcp_tool_iterations_total", model="mock-model")
    assert iterations is not None and iterations >= 2
    stops = sample(metrics, "smg_mcp_loop_stops_total", reason="completed")
    assert stops is not None and stops >= 1
    active = sample(metrics, "smg_mcp_servers_active")
    assert active is not None and active >= 2
