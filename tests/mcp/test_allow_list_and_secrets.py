"""MCP hardening through the whole app: the host allow-list from every source, what a chat request's
``mcp`` entry can reach, tool-output truncation, and URL secrets kept out of views, errors, logs and
metrics. Real MCP servers run as processes on 127.0.0.1; a bare TCP listener counts every connection a
refused URL would have received."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.cli.main import main
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import RedactUrlsFilter
from smg.mcp.registry.store import SqliteRegistry
from smg.settings import McpSettings
from smg.testing.gateway import RunningGateway
from smg.testing.processes import spawn, stop, wait_for_line
from smg.testing.worker import RunningWorker
from tests._helpers import assert_error, eventually
from tests.conftest import chat_body, make_settings

MCP_READY = "MCP_SERVER_READY"


@pytest.fixture(scope="module")
def mcp_urls() -> Iterator[dict[str, str]]:
    """clock and faults over streamable HTTP (URLs written with ``localhost``), started once."""
    procs = {}
    try:
        for name in ("clock", "faults"):
            args = [
                sys.executable,
                "-m",
                f"mcp_servers.{name}",
                "--transport",
                "streamable-http",
                "--port",
                "0",
            ]
            procs[name] = spawn(args)
        urls = {name: wait_for_line(proc, MCP_READY) for name, proc in procs.items()}
        yield {name: url.replace("127.0.0.1", "localhost") for name, url in urls.items()}
    finally:
        for proc in procs.values():
            stop(proc)


@dataclasses.dataclass
class Sentinel:
    """A TCP listener on 127.0.0.1 that counts connections and closes each at once."""

    url: str
    connections: int = 0


@pytest.fixture
async def sentinel(stack: AsyncExitStack) -> AsyncIterator[Sentinel]:
    found = Sentinel(url="")

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
    async with server:
        yield found


def _mcp_settings(**fields: Any) -> McpSettings:
    return McpSettings(allowed_hosts=("localhost",), **fields)


async def _admin(gw: RunningGateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, timeout=60)


async def test_admin_api_refuses_a_host_outside_the_list_before_contacting_it(
    worker: RunningWorker, start_gateway: Callable[..., Any], sentinel: Sentinel, mcp_urls: dict[str, str]
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=_mcp_settings()))
    far = {"name": "far", "transport": "streamable-http", "url": sentinel.url}

    async with await _admin(gw) as admin:
        refused = await admin.post("/mcp/servers", json=far)
        dry_run = await admin.post("/mcp/servers", json={**far, "dry_run": True})
        allowed = await admin.post(
            "/mcp/servers", json={"name": "clock", "transport": "streamable-http", "url": mcp_urls["clock"]}
        )
        listed = (await admin.get("/mcp/servers")).json()["servers"]

    assert_error(refused, 403, "mcp_host_not_allowed", param="url")
    assert_error(dry_run, 403, "mcp_host_not_allowed", param="url")
    assert allowed.status_code == 201, allowed.text
    assert [s["name"] for s in listed] == ["clock"]
    assert sentinel.connections == 0


async def test_registry_and_yaml_entries_outside_the_list_are_logged_and_not_started(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    sentinel: Sentinel,
    mcp_urls: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = tmp_path / "mcp.db"
    SqliteRegistry(str(registry)).add(
        ServerSpec(name="stored", transport="streamable-http", url=sentinel.url)
    )
    SqliteRegistry(str(registry)).add(
        ServerSpec(name="clock", transport="streamable-http", url=mcp_urls["clock"])
    )
    yaml_file = tmp_path / "mcp.yaml"
    yaml_file.write_text(f"servers:\n  - name: static\n    protocol: streamable\n    url: {sentinel.url}\n")
    settings = make_settings(
        (worker.url,), mcp=_mcp_settings(registry_path=str(registry), config_path=str(yaml_file))
    )

    with caplog.at_level(logging.ERROR, logger="smg.mcp"):
        gw: RunningGateway = await start_gateway(settings)
        async with await _admin(gw) as admin:
            listed = (await admin.get("/mcp/servers")).json()["servers"]
            check = (await admin.get("/mcp/check")).json()["servers"]

    assert [s["name"] for s in listed] == ["clock"]
    assert [(s["name"], s["ok"]) for s in check] == [("clock", True)]
    refusals = [r.getMessage() for r in caplog.records if "not starting it" in r.getMessage()]
    assert sorted(m.split("'")[1] for m in refusals) == ["static", "stored"]
    assert sentinel.connections == 0


async def test_a_chat_request_can_name_only_registered_servers_never_a_url_or_a_command(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    sentinel: Sentinel,
    mcp_urls: dict[str, str],
    tmp_path: Path,
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=McpSettings()))
    marker = tmp_path / "spawned"
    smuggled = {
        "server_url": sentinel.url,
        "url": sentinel.url,
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-c", f"open({str(marker)!r}, 'w').close()"],
        "require_approval": "never",
    }
    async with await _admin(gw) as admin:
        resp = await admin.post(
            "/mcp/servers", json={"name": "clock", "transport": "streamable-http", "url": mcp_urls["clock"]}
        )
        assert resp.status_code == 201, resp.text
        unregistered = await admin.post(
            "/v1/chat/completions",
            json=chat_body("hi", tools=[{"type": "mcp", "server_label": "ghost", **smuggled}]),
        )
        registered = await admin.post(
            "/v1/chat/completions",
            json=chat_body(
                "CALL clock__now {}", tools=[{"type": "mcp", "server_label": "clock", **smuggled}]
            ),
        )
        listed = (await admin.get("/mcp/servers")).json()["servers"]

    assert_error(unregistered, 400, "invalid_request", param="tools[0].server_label")
    assert registered.status_code == 200, registered.text
    executed = registered.json()["smg"]["tool_calls"]
    assert [(c["server"], c["tool"], c["status"]) for c in executed] == [("clock", "now", "ok")]
    assert [s["name"] for s in listed] == ["clock"]
    assert sentinel.connections == 0
    assert not marker.exists()


async def test_a_large_tool_result_reaches_the_model_cut_with_a_readable_marker(
    worker: RunningWorker, start_gateway: Callable[..., Any], mcp_urls: dict[str, str]
) -> None:
    gw: RunningGateway = await start_gateway(
        make_settings((worker.url,), mcp=_mcp_settings(max_tool_output_bytes=1000))
    )
    async with await _admin(gw) as admin:
        resp = await admin.post(
            "/mcp/servers", json={"name": "faults", "transport": "streamable-http", "url": mcp_urls["faults"]}
        )
        assert resp.status_code == 201, resp.text
        await admin.delete(f"{worker.url}/_smg/requests")
        done = await admin.post(
            "/v1/chat/completions",
            json=chat_body(
                'CALL faults__huge {"size_bytes": 50000}',
                tools=[{"type": "mcp", "server_label": "faults", "require_approval": "never"}],
            ),
        )
        seen = (await admin.get(f"{worker.url}/_smg/requests")).json()

    assert done.status_code == 200, done.text
    tool_messages = [m for r in seen for m in r["body"]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    fed_back = tool_messages[0]["content"]
    marker = "\n[smg: tool output truncated: 50000 bytes, only the first 1000 bytes are shown]"
    assert fed_back.endswith(marker)
    assert len(fed_back.encode()) == 1000 + len(marker)
    assert marker.strip() in done.json()["choices"][0]["message"]["content"]


async def test_secrets_in_an_mcp_url_reach_no_view_error_log_or_metric(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The scripted worker answers /mcp with 404: the MCP client's failure quotes the URL it used.
    port = worker.url.rsplit(":", 1)[1]
    secret_url = f"http://bob:PASSWORD99@127.0.0.1:{port}/mcp?token=TOKEN12345"
    yaml_file = tmp_path / "mcp.yaml"
    yaml_file.write_text(f"servers:\n  - name: leaky\n    protocol: streamable\n    url: {secret_url}\n")
    settings = make_settings((worker.url,), mcp=McpSettings(config_path=str(yaml_file)))

    caplog.handler.addFilter(RedactUrlsFilter())  # what `smg launch` puts on its log handler
    with caplog.at_level(logging.DEBUG):
        gw: RunningGateway = await start_gateway(settings)
        async with await _admin(gw) as admin:
            refused = await admin.post(
                "/mcp/servers", json={"name": "again", "transport": "streamable-http", "url": secret_url}
            )
            check = (await admin.get("/mcp/check")).json()["servers"]
            server = (await admin.get("/mcp/servers/leaky")).json()
            chat = await admin.post(
                "/v1/chat/completions",
                json=chat_body(
                    "hi", tools=[{"type": "mcp", "server_label": "leaky", "require_approval": "never"}]
                ),
            )
        exposition = gw.context.metrics.render().decode()

    assert refused.status_code in (400, 502), refused.text
    assert check[0]["ok"] is False and check[0]["error"]
    assert server["url"] == f"http://bob:***@127.0.0.1:{port}/mcp?token=***"
    texts = [refused.text, str(check), str(server), chat.text, exposition, caplog.text]
    assert [t for t in texts if "PASSWORD99" in t or "TOKEN12345" in t] == []


async def test_smg_mcp_add_against_the_gateway_reports_the_refusal_and_saves_nothing(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    sentinel: Sentinel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,), mcp=_mcp_settings()))

    code = await asyncio.to_thread(
        main,
        ["mcp", "--gateway", gw.url, "add", "far", "--transport", "streamable-http", "--url", sentinel.url],
    )

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("smg: error: HTTP 403: MCP server 'far': host '127.0.0.1' is not in the allowed")
    assert gw.context.mcp.specs() == {}
    assert sentinel.connections == 0


async def test_an_offline_registry_edit_outside_the_list_is_logged_and_not_started(
    worker: RunningWorker,
    start_gateway: Callable[..., Any],
    sentinel: Sentinel,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = tmp_path / "mcp.db"
    settings = make_settings(
        (worker.url,), mcp=_mcp_settings(registry_path=str(registry), registry_poll_secs=0.05)
    )
    gw: RunningGateway = await start_gateway(settings)

    with caplog.at_level(logging.ERROR, logger="smg.mcp"):
        SqliteRegistry(str(registry)).add(ServerSpec(name="late", transport="sse", url=sentinel.url))
        await eventually(lambda: any("'late'" in r.getMessage() for r in caplog.records))

    assert gw.context.mcp.specs() == {}
    assert [r.getMessage() for r in caplog.records] == [
        "MCP server 'late': host '127.0.0.1' is not in the allowed MCP hosts (--mcp-allowed-hosts); "
        "not starting it"
    ]
    assert sentinel.connections == 0
