"""Loading SMG's --mcp-config-path YAML into ServerSpecs."""

from __future__ import annotations

from pathlib import Path

import pytest

from smg.mcp import InvalidMcpConfig, ServerSpec, load_mcp_config, parse_mcp_config

FULL_EXAMPLE = """\
proxy:
  http: http://proxy:8080
servers:
  - name: clock
    protocol: stdio
    command: python
    args: [-m, mcp_servers.clock]
    envs:
      TZ: UTC
      PORT: 8080
      CLOCK_API_KEY: ${CLOCK_KEY}
    required: true
    expose: always
    tools:
      now: {alias: current_time, timeout_secs: 5}
  - name: search
    protocol: streamable
    url: https://search.example.com/mcp
    token: ${SEARCH_TOKEN}
    headers:
      X-Team: agents
    tool_timeout_secs: 60
  - name: legacy
    protocol: sse
    url: http://127.0.0.1:9001/sse
    proxy: {http: http://other:8080}
    tools:
      ping:
"""


def test_full_example_file_loads_into_specs(tmp_path: Path) -> None:
    path = tmp_path / "mcp.yaml"
    path.write_text(FULL_EXAMPLE, encoding="utf-8")
    clock, search, legacy = load_mcp_config(path)
    assert clock == ServerSpec(
        name="clock",
        transport="stdio",
        command="python",
        args=("-m", "mcp_servers.clock"),
        env={"TZ": "UTC", "PORT": "8080", "CLOCK_API_KEY": "${CLOCK_KEY}"},
        required=True,
        expose="always",
        aliases={"now": "current_time"},
        tool_timeouts={"now": 5.0},
    )
    assert search.transport == "streamable-http"
    assert search.headers == {"X-Team": "agents", "Authorization": "Bearer ${SEARCH_TOKEN}"}
    assert search.tool_timeout_secs == 60.0
    assert search.expose == "on-request"
    assert legacy.transport == "sse"
    assert legacy.aliases == {}


def test_empty_file_and_empty_servers_list_give_no_servers() -> None:
    assert parse_mcp_config("") == []
    assert parse_mcp_config("servers: []\n") == []


def test_unreadable_file_is_an_invalid_config_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidMcpConfig):
        load_mcp_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("servers: [unclosed\n", None),
        ("- just a list\n", None),
        ("servers: {name: x}\n", "servers"),
        ("servers: [plain-string]\n", None),
        ("servers:\n  - {name: a, protocol: websocket, url: http://h/}\n", "protocol"),
        ("servers:\n  - {name: a, protocol: sse}\n", "url"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, url: http://h/}\n", "url"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, args: -m}\n", "args"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, envs: [A]}\n", "envs"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, required: maybe}\n", "required"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, colour: red}\n", "colour"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, tools: [now]}\n", "tools"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, tools: {now: {alais: n}}}\n", "tools.now"),
        ("servers:\n  - {name: a, protocol: stdio, command: x, tools: {now: {alias: 'a b'}}}\n", "aliases"),
        ("servers:\n  - {name: a, protocol: sse, url: http://h/, token: 5}\n", "token"),
        (
            "servers:\n  - {name: a, protocol: sse, url: http://h/, token: t, headers: {authorization: x}}\n",
            "token",
        ),
        ("servers:\n  - {name: 'a b', protocol: stdio, command: x}\n", "name"),
        (
            "servers:\n  - {name: a, protocol: stdio, command: x}\n"
            "  - {name: a, protocol: stdio, command: y}\n",
            "name",
        ),
    ],
)
def test_bad_config_is_refused_naming_the_field(text: str, param: str | None) -> None:
    with pytest.raises(InvalidMcpConfig) as info:
        parse_mcp_config(text)
    assert info.value.code == "invalid_mcp_config"
    assert info.value.param == param


def test_error_names_the_server_index() -> None:
    text = "servers:\n  - {name: ok, protocol: stdio, command: x}\n  - {name: bad, protocol: sse}\n"
    with pytest.raises(InvalidMcpConfig) as info:
        parse_mcp_config(text, source="mcp.yaml")
    assert "servers[1]" in info.value.message
    assert info.value.server == "bad"
