"""A real gateway process with stored keys: the scripted worker (models ``mock-model`` and
``other-model``), the clock and calc MCP servers over streamable HTTP, and keys of every kind of scope,
made through the admin API. Started once per module; every process is stopped by its PID."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.testing.processes import spawn, wait_for_line
from tests._procs import Gateway, Procs, poll

ADMIN = "admin-secret-for-tests"
FLAG_KEY = "flag-key-for-tests"

# name -> body of POST /keys (the name added); "revoked" is revoked, "expired" lives one second.
KEYS: dict[str, dict[str, Any]] = {
    "unrestricted": {},
    "server": {"servers": ["clock"]},
    "tool": {"tools": ["clock__now"]},
    "model": {"models": ["other-model"]},
    "revoked": {},
    "expired": {"expires_in": 1},
}


@dataclass(frozen=True)
class KeyedGateway:
    gateway: Gateway
    worker: str
    database: Path
    secrets: dict[str, str]  # row of the scope matrix -> the key it presents

    @property
    def url(self) -> str:
        return self.gateway.url

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)

    def client(self, row: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.secrets[row]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def start_mcp(procs: Procs, name: str) -> str:
    proc = spawn(
        [sys.executable, "-m", f"mcp_servers.{name}", "--transport", "streamable-http", "--port", "0"]
    )
    procs.started.append(proc)
    return wait_for_line(proc, "MCP_SERVER_READY")


def start_keyed_gateway(procs: Procs, database: Path, *extra: str) -> tuple[Gateway, str]:
    """A gateway on ``database`` with ``--admin-api-key ADMIN``, a two-model worker, clock and calc."""
    _, worker = procs.worker("--model", "mock-model", "--model", "other-model")
    servers = {name: start_mcp(procs, name) for name in ("clock", "calc")}
    gateway = procs.gateway(
        "--worker-urls", worker, "--mcp-registry", str(database), "--admin-api-key", ADMIN, *extra
    )
    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
    ) as admin:
        for name, url in servers.items():
            added = admin.post(
                "/mcp/servers", json={"name": name, "transport": "streamable-http", "url": url}
            )
            assert added.status_code == 201, added.text
    return gateway, worker


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedGateway]:
    procs = Procs()
    try:
        database = tmp_path_factory.mktemp("keys") / "smg.db"
        gateway, worker = start_keyed_gateway(procs, database, "--api-key", FLAG_KEY)
        secrets = {"flag key": FLAG_KEY}
        with httpx.Client(
            base_url=gateway.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        ) as admin:
            for name, body in KEYS.items():
                created = admin.post("/keys", json={"name": name, **body})
                assert created.status_code == 201, created.text
                secrets[name] = created.json()["secret"]
            assert admin.post("/keys/revoked/revoke").json()["state"] == "revoked"
        expired = {"Authorization": f"Bearer {secrets['expired']}"}
        poll(lambda: httpx.get(gateway.url + "/v1/models", headers=expired, timeout=10).status_code == 401)
        yield KeyedGateway(gateway, worker, database, secrets)
    finally:
        procs.stop_all()
