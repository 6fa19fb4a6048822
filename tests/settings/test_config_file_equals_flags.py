"""``smg --config FILE`` runs with the same effective settings as the same values given as flags (with the
MCP servers in an ``--mcp-config-path`` YAML): workers and their keys, policy, API keys, admin key,
limits, retries, breakers and two MCP servers."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.yaml_config import static_servers
from smg.settings import Settings, WorkerEntry
from smg.settings.groups import MCP_SERVERS_KEY
from tests.settings._model import from_file, from_flags, write_config

ENV = {"XDG_STATE_HOME": "/var/lib/smg-test"}
MCP_SERVERS: list[dict[str, Any]] = [
    {
        "name": "clock",
        "protocol": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_servers.clock", "--transport", "stdio"],
        "envs": {"TZ": "UTC"},
    },
    {
        "name": "calc",
        "protocol": "streamable",
        "url": "http://127.0.0.1:9100/mcp",
        "headers": {"X-Api-Key": "${CALC_KEY}"},
        "expose": "always",
        "tools": {"add": {"alias": "plus", "timeout_secs": 5}},
    },
]
FILE: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8123,
    "worker_urls": ["http://127.0.0.1:9001"],
    "worker_api_key": "upstream-key",
    "workers": ["http://127.0.0.1:9002", {"url": "http://127.0.0.1:9003", "api_key": "upstream-key"}],
    "policy": "round_robin",
    "api_key": ["client-a", "client-b"],
    "admin_api_key": ["admin-key"],
    "max_concurrent_requests": 8,
    "queue_size": 3,
    "queue_timeout_secs": 5,
    "max_payload_size": 4096,
    "max_messages_per_request": 10,
    "max_tools_per_request": 4,
    "retry_max_retries": 2,
    "retry_initial_backoff_ms": 1,
    "retry_max_backoff_ms": 20,
    "retry_backoff_multiplier": 2,
    "retry_jitter_factor": 0,
    "cb_failure_threshold": 4,
    "cb_success_threshold": 1,
    "cb_timeout_duration_secs": 7.5,
    "mcp_max_iterations": 3,
    MCP_SERVERS_KEY: MCP_SERVERS,
}
FLAGS = [
    "--host", "127.0.0.1", "--port", "8123",
    "--worker-urls", "http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003",
    "--worker-api-key", "upstream-key",
    "--policy", "round_robin",
    "--api-key", "client-a", "client-b", "--admin-api-key", "admin-key",
    "--max-concurrent-requests", "8", "--queue-size", "3", "--queue-timeout-secs", "5",
    "--max-payload-size", "4096", "--max-messages-per-request", "10", "--max-tools-per-request", "4",
    "--retry-max-retries", "2", "--retry-initial-backoff-ms", "1", "--retry-max-backoff-ms", "20",
    "--retry-backoff-multiplier", "2", "--retry-jitter-factor", "0",
    "--cb-failure-threshold", "4", "--cb-success-threshold", "1", "--cb-timeout-duration-secs", "7.5",
    "--mcp-max-iterations", "3",
]  # fmt: skip


def effective(settings: Settings) -> tuple[Settings, tuple[WorkerEntry, ...], list[ServerSpec]]:
    """What a gateway runs with: the settings, the workers registered at start-up with the key each is
    sent, the MCP servers served from files. The fields that only say where workers and MCP servers
    were listed are left out of the first part; what they list is in the other two."""
    mcp = settings.mcp
    servers = static_servers(mcp.config_path, mcp.servers_file, key=MCP_SERVERS_KEY)
    rest = dataclasses.replace(
        settings,
        workers=dataclasses.replace(settings.workers, urls=(), entries=(), api_key=None),
        mcp=dataclasses.replace(mcp, config_path=None, servers_file=None),
    )
    return rest, settings.workers.static, servers


def test_a_config_file_gives_the_settings_of_the_same_flags(tmp_path: Path) -> None:
    config = write_config(tmp_path / "smg.yaml", FILE)
    mcp_yaml = write_config(tmp_path / "mcp.yaml", {"servers": MCP_SERVERS})

    by_file = from_file(config, env=ENV)
    by_flags = from_flags([*FLAGS, "--mcp-config-path", str(mcp_yaml)], env=ENV)

    assert effective(by_file) == effective(by_flags)
    rest, workers, servers = effective(by_file)
    assert rest != effective(from_flags([], env=ENV))[0]
    assert [(w.url, w.api_key) for w in workers] == [
        (f"http://127.0.0.1:{port}", "upstream-key") for port in (9001, 9002, 9003)
    ]
    assert [s.name for s in servers] == ["clock", "calc"]
    assert (by_file.mcp.servers_file, by_file.mcp.config_path) == (str(config), None)


def test_each_group_of_the_file_reaches_the_gateways_settings(tmp_path: Path) -> None:
    s = from_file(write_config(tmp_path / "smg.yaml", FILE), env=ENV)

    assert (s.server.host, s.server.port, s.server.max_payload_size) == ("127.0.0.1", 8123, 4096)
    assert s.workers.policy == "round_robin"
    assert (s.auth.api_keys, s.auth.admin_api_keys) == (("client-a", "client-b"), ("admin-key",))
    assert (s.admission.max_concurrent_requests, s.admission.queue_size) == (8, 3)
    assert (s.limits.max_messages, s.limits.max_tools) == (10, 4)
    assert (s.retry.max_retries, s.retry.backoff_multiplier, s.retry.jitter_factor) == (2, 2.0, 0.0)
    assert (s.breaker.failure_threshold, s.breaker.timeout_secs) == (4, 7.5)
    assert s.mcp.max_iterations == 3


def test_a_worker_of_the_file_keeps_its_own_key_and_the_others_get_the_worker_api_key(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / "smg.yaml",
        {
            "worker_urls": ["http://127.0.0.1:9001"],
            "worker_api_key": "shared",
            "workers": ["http://127.0.0.1:9002/", {"url": "http://127.0.0.1:9003", "api_key": "own"}],
        },
    )

    workers = from_file(config).workers.static

    assert [(w.url, w.api_key) for w in workers] == [
        ("http://127.0.0.1:9001", "shared"),
        ("http://127.0.0.1:9002", "shared"),
        ("http://127.0.0.1:9003", "own"),
    ]


def test_the_mcp_yaml_and_the_config_files_servers_are_served_together(tmp_path: Path) -> None:
    mcp_yaml = write_config(tmp_path / "mcp.yaml", {"servers": MCP_SERVERS[:1]})
    config = write_config(
        tmp_path / "smg.yaml", {"mcp_config_path": str(mcp_yaml), MCP_SERVERS_KEY: MCP_SERVERS[1:]}
    )

    _, _, servers = effective(from_file(config))

    assert [s.name for s in servers] == ["clock", "calc"]
    assert servers[1].aliases == {"add": "plus"}
    assert dict(servers[1].headers) == {"X-Api-Key": "${CALC_KEY}"}
