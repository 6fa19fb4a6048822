"""A gateway process started with only ``smg --config smg.yaml`` serves what the file says: its workers
(each sent its own key), its policy, its client and admin keys, its limits and its two MCP servers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.settings.groups import MCP_SERVERS_KEY
from smg.testing.processes import spawn, wait_for_line
from tests._procs import Procs, poll
from tests.settings._model import write_config
from tests.settings.conftest import Gateway, start_config_gateway

pytestmark = pytest.mark.e2e

CLIENT_KEY, ADMIN_KEY = "client-key", "admin-key"
SHARED_KEY, OWN_KEY = "shared-upstream", "own-upstream"
CALC_KEY = "calc-secret"
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "the same prompt every time"}]}


def _config(tmp_path: Path, worker_a: str, worker_b: str, calc_url: str) -> Path:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "prometheus_host": "127.0.0.1",
        "prometheus_port": 0,
        "mcp_registry": str(tmp_path / "registry.db"),
        "worker_urls": [worker_a],
        "worker_api_key": SHARED_KEY,
        "workers": [{"url": worker_b, "api_key": OWN_KEY}],
        "policy": "round_robin",
        "api_key": [CLIENT_KEY],
        "admin_api_key": [ADMIN_KEY],
        "max_concurrent_requests": 16,
        "queue_size": 4,
        "max_payload_size": 8192,
        "retry_max_retries": 2,
        "retry_initial_backoff_ms": 1,
        "cb_failure_threshold": 3,
        "health_check_interval_secs": 3600,
        MCP_SERVERS_KEY: [
            {
                "name": "clock",
                "protocol": "stdio",
                "command": sys.executable,
                "args": ["-m", "mcp_servers.clock", "--transport", "stdio"],
            },
            {
                "name": "calc",
                "protocol": "streamable",
                "url": calc_url,
                "headers": {"X-Api-Key": "${CALC_KEY}"},
            },
        ],
    }
    return write_config(tmp_path / "smg.yaml", values)


def _connected(gw: Gateway) -> dict[str, Any] | None:
    servers = httpx.get(gw.url + "/mcp/servers", headers=ADMIN, timeout=10).json()["servers"]
    states = {s["name"]: (s["status"] or {}).get("state") for s in servers}
    return {s["name"]: s for s in servers} if set(states.values()) == {"connected"} else None


def test_a_gateway_started_with_only_a_config_file_serves_what_the_file_says(
    procs: Procs, tmp_path: Path
) -> None:
    _, worker_a = procs.worker()
    _, worker_b = procs.worker()
    calc = spawn([sys.executable, "-m", "mcp_servers.calc", "--transport", "streamable-http", "--port", "0"])
    procs.started.append(calc)
    calc_url = wait_for_line(calc, "MCP_SERVER_READY")

    gw = start_config_gateway(procs, _config(tmp_path, worker_a, worker_b, calc_url), CALC_KEY=CALC_KEY)

    # Keys: the data plane wants the client key, the admin plane the admin key.
    assert httpx.get(gw.url + "/v1/models", timeout=10).status_code == 401
    assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=10).status_code == 401
    assert httpx.get(gw.url + "/workers", timeout=10).status_code == 401
    assert httpx.get(gw.url + "/workers", headers=CLIENT, timeout=10).status_code == 403

    # Workers: both listed, from `worker_urls` and from the `workers` section.
    workers = httpx.get(gw.url + "/workers", headers=ADMIN, timeout=10).json()["workers"]
    assert sorted(w["url"] for w in workers) == sorted([worker_a, worker_b])

    def models() -> list[str]:
        listed = httpx.get(gw.url + "/v1/models", headers=CLIENT, timeout=10).json()["data"]
        return [m["id"] for m in listed]

    assert poll(models, timeout=30) == ["mock-model"]

    # MCP servers: both from the file's list, connected; the header reference is shown, not resolved.
    servers = poll(lambda: _connected(gw), timeout=60)
    assert sorted(servers) == ["calc", "clock"]
    assert servers["calc"]["headers"] == {"X-Api-Key": "${CALC_KEY}"}

    # Policy: round robin over the two workers, each sent its own upstream key.
    for _ in range(4):
        resp = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=CLIENT, timeout=30)
        assert resp.status_code == 200, resp.text
    for worker, key in ((worker_a, SHARED_KEY), (worker_b, OWN_KEY)):
        seen = httpx.get(worker + "/_smg/requests", timeout=10).json()
        assert [r["headers"].get("authorization") for r in seen] == [f"Bearer {key}"] * 2
    metrics = httpx.get(gw.metrics_url, timeout=10).text
    assert 'smg_worker_selection_total{policy="round_robin"' in metrics

    # Limits: a body over max_payload_size is refused.
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 9000}]}
    resp = httpx.post(gw.url + "/v1/chat/completions", json=big, headers=CLIENT, timeout=30)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"
