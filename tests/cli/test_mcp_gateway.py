"""``smg mcp`` against a gateway's admin API, with `httpx.MockTransport` playing the gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smg.cli.main import build_parser, main
from smg.cli.mcp import handle

GW = "http://gw.test"
Route = Callable[[httpx.Request], httpx.Response]


class FakeGateway:
    """Answers ``(method, path)`` from ``routes`` and records every request."""

    def __init__(self, routes: dict[tuple[str, str], Route | tuple[int, Any]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"error": {"message": "no route", "code": "unknown_url"}})
        if callable(route):
            return route(request)
        status, body = route
        return httpx.Response(status, json=body)

    def run(self, *argv: str, environ: dict[str, str] | None = None) -> int:
        ns = build_parser().parse_args(["mcp", *argv])
        env = {"SMG_GATEWAY_URL": GW, "SMG_ADMIN_KEY": "adm"} if environ is None else environ
        return handle(ns, environ=env, transport=httpx.MockTransport(self))

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def _view(name: str = "calc", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "streamable-http",
        "url": "http://127.0.0.1:9/mcp",
        "command": None,
        "args": [],
        "env": {},
        "headers": {"Authorization": "***"},
        "expose": "on-request",
        "tool_timeout_secs": 30.0,
        "tool_timeouts": {},
        "required": False,
        "aliases": {},
        "status": {
            "state": "connected",
            "tools": 1,
            "breaker": "closed",
            "last_error": None,
            "reconnects": 0,
            "pid": None,
        },
        **extra,
    }


TOOL = {
    "name": "t" * 70,
    "exposed_name": "calc__ttt_12345678",
    "description": "long one",
    "read_only": True,
    "idempotent": True,
    "destructive": False,
}


def test_list_sends_the_admin_key_and_prints_the_servers_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    gw = FakeGateway({("GET", "/mcp/servers"): (200, {"servers": [_view()]})})
    assert gw.run("list", "--json") == 0
    assert gw.requests[0].headers["authorization"] == "Bearer adm"
    assert json.loads(capsys.readouterr().out) == {"servers": [_view()]}


def test_target_options_after_the_action_override_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    gw = FakeGateway({("GET", "/mcp/servers"): (200, {"servers": []})})
    env = {"SMG_GATEWAY_URL": "http://elsewhere.test"}
    assert gw.run("list", "--gateway", GW, "--admin-key", "k2", environ=env) == 0
    assert str(gw.requests[0].url) == f"{GW}/mcp/servers"
    assert gw.requests[0].headers["authorization"] == "Bearer k2"
    assert "no MCP servers registered" in capsys.readouterr().out


def test_add_posts_the_spec_with_dry_run_and_reports_the_findings(capsys: pytest.CaptureFixture[str]) -> None:
    message = "tool 'evaluate' is offered as 'calc__evaluate'"
    finding = {
        "kind": "tool",
        "message": message,
        "tool": "evaluate",
        "exposed": "calc__evaluate",
        "blocking": False,
    }
    answer = {"server": _view(), "findings": [finding], "saved": False}
    gw = FakeGateway({("POST", "/mcp/servers"): (200, answer)})
    argv = (
        "add",
        "calc",
        "--env",
        "A=1",
        "--dry-run",
        "--expose",
        "always",
        "--required",
        "--tool-timeout",
        "5",
    )
    assert gw.run(*argv, "--", "python", "-m", "mcp_servers.calc", "--transport", "stdio") == 0
    body = gw.body()
    assert body["dry_run"] is True
    assert body["transport"] == "stdio" and body["command"] == "python"
    assert body["args"] == ["-m", "mcp_servers.calc", "--transport", "stdio"]
    assert (body["env"], body["expose"], body["required"], body["tool_timeout_secs"]) == (
        {"A": "1"},
        "always",
        True,
        5.0,
    )
    out = capsys.readouterr().out
    assert "calc__evaluate" in out and "nothing was saved" in out


def test_add_http_sends_headers_and_defaults_to_streamable_http(capsys: pytest.CaptureFixture[str]) -> None:
    gw = FakeGateway({("POST", "/mcp/servers"): (201, {"server": _view(), "findings": [], "saved": True})})
    assert gw.run("add", "calc", "--url", "http://127.0.0.1:9/mcp", "--header", "X-Key=${K}", "--json") == 0
    body = gw.body()
    assert (body["transport"], body["headers"], body["dry_run"]) == (
        "streamable-http",
        {"X-Key": "${K}"},
        False,
    )
    assert json.loads(capsys.readouterr().out)["saved"] is True


def test_refused_add_is_one_error_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    error = {
        "error": {
            "message": "MCP server 'calc' was not registered: name taken",
            "code": "mcp_registration_conflict",
        }
    }
    gw = FakeGateway({("POST", "/mcp/servers"): (409, error)})
    assert gw.run("add", "calc", "--url", "http://127.0.0.1:9/mcp") == 1
    err = capsys.readouterr().err
    assert err == "smg: error: HTTP 409: MCP server 'calc' was not registered: name taken\n"


def test_show_prints_the_server_and_its_tools(capsys: pytest.CaptureFixture[str]) -> None:
    gw = FakeGateway({("GET", "/mcp/servers/calc"): (200, _view(tools=[TOOL]))})
    assert gw.run("show", "calc", "--json") == 0
    assert json.loads(capsys.readouterr().out)["tools"] == [TOOL]
    assert gw.run("show", "calc") == 0
    assert "long one" in capsys.readouterr().out  # the tools table follows the server table


def test_tools_lists_all_servers_or_refreshes_one(capsys: pytest.CaptureFixture[str]) -> None:
    gw = FakeGateway(
        {
            ("GET", "/mcp/tools"): (200, {"tools": [{"server": "calc", **TOOL}]}),
            ("POST", "/mcp/servers/calc/refresh"): (200, {"tools": [TOOL]}),
        }
    )
    assert gw.run("tools", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"tools": [{"server": "calc", **TOOL}]}
    assert gw.run("tools", "calc", "--refresh", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"tools": [{"server": "calc", **TOOL}]}
    assert [(r.method, r.url.path) for r in gw.requests] == [
        ("GET", "/mcp/tools"),
        ("POST", "/mcp/servers/calc/refresh"),
    ]


def test_call_maps_an_exposed_name_back_and_fails_with_the_tool(capsys: pytest.CaptureFixture[str]) -> None:
    def call(request: httpx.Request) -> httpx.Response:
        args = json.loads(request.content)["arguments"]
        status = "ok" if args == {"text": "x"} else "error"
        return httpx.Response(200, json={"server": "calc", "tool": TOOL["name"], "status": status,
                                         "text": "x", "duration": 0.1, "attempts": 1})  # fmt: skip

    gw = FakeGateway(
        {
            ("GET", "/mcp/servers/calc"): (200, _view(tools=[TOOL])),
            ("POST", f"/mcp/servers/calc/tools/{TOOL['name']}/call"): call,
        }
    )
    assert gw.run("call", "calc", str(TOOL["exposed_name"]), "--args", '{"text": "x"}') == 0
    assert capsys.readouterr().out == "x\n"
    assert gw.run("call", "calc", str(TOOL["name"]), "--args", '{"text": "y"}') == 1
    assert capsys.readouterr().err.startswith("smg: error: tool ")


def test_check_exits_1_when_a_server_fails(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"name": "calc", "ok": True, "state": "connected", "tools": 1, "error": None},
        {"name": "down", "ok": False, "state": "failed", "tools": 0, "error": "connection refused"},
    ]
    gw = FakeGateway({("GET", "/mcp/check"): (200, {"servers": rows})})
    assert gw.run("check", "--json") == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"servers": rows}
    assert captured.err == "smg: error: 1 of 2 MCP server(s) failed the check: down\n"


def test_remove_deletes_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    gw = FakeGateway({("DELETE", "/mcp/servers/calc"): (200, {"removed": "calc"})})
    assert gw.run("remove", "calc") == 0
    assert capsys.readouterr().out == "removed MCP server calc\n"


def test_unreachable_gateway_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gw = FakeGateway({("GET", "/mcp/servers"): refuse})
    assert gw.run("list") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"smg: error: cannot reach the gateway at {GW}") and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["mcp"],
        ["mcp", "add", "x"],
        ["mcp", "add", "x", "--url", "http://127.0.0.1:9/mcp", "--", "python"],
        ["mcp", "add", "x", "--url", "http://127.0.0.1:9/mcp", "--env", "A=1"],
        ["mcp", "add", "x", "--header", "novalue", "--url", "http://127.0.0.1:9/mcp"],
        ["mcp", "add", "bad name!", "--url", "http://127.0.0.1:9/mcp"],
        ["mcp", "call", "x", "y", "--args", "[1]"],
        ["mcp", "list", "--gateway", GW, "--registry", "/tmp/never.db"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("smg: error: ") and err.count("\n") == 1
