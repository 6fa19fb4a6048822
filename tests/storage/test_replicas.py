"""Two gateway processes sharing one real PostgreSQL database (`--database-url`): what one replica
changes the other sees, a Responses chain moves between them, both start at once against an empty
database, and PostgreSQL stopped and started again gives 503s to what needs it, then full service."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from smg.cli.launch import READY_PREFIX
from smg.testing.processes import spawn, wait_for_line
from tests._helpers import assert_error
from tests._procs import Gateway, Procs, chat, poll
from tests.storage._pg import PgServer

pytestmark = pytest.mark.e2e

ADMIN = "admin-secret-for-replicas"


@dataclass(frozen=True)
class Replicas:
    a: Gateway
    b: Gateway
    faults: str
    procs: Procs

    def admin(self, gateway: Gateway) -> httpx.Client:
        return httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)


def _start_together(procs: Procs, *args: str) -> tuple[Gateway, Gateway]:
    """Two gateways spawned before either is waited for: they migrate the database at the same time."""
    base = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--prometheus-port", "0"]
    started = [spawn([*base, *args]) for _ in range(2)]
    procs.started.extend(started)
    gateways = []
    for proc in started:
        url, _, metrics = wait_for_line(proc, READY_PREFIX, timeout=60).partition(" (metrics ")
        gateways.append(Gateway(proc=proc, url=url, metrics_url=metrics.rstrip(")")))
    return gateways[0], gateways[1]


@pytest.fixture
def replicas(own_pg: PgServer) -> Iterator[Replicas]:
    procs = Procs()
    try:
        _, worker = procs.worker()
        _, faults = procs.mcp_faults()
        url = own_pg.new_database()
        a, b = _start_together(
            procs, "--worker-urls", worker, "--database-url", url, "--admin-api-key", ADMIN
        )
        yield Replicas(a, b, faults, procs)
    finally:
        procs.stop_all()


def _server(name: str, url: str) -> dict[str, str]:
    return {"name": name, "transport": "streamable-http", "url": url}


def _servers(client: httpx.Client) -> list[str]:
    return [s["name"] for s in client.get("/mcp/servers").json()["servers"]]


def _loop(client: httpx.Client, text: str) -> httpx.Response:
    body = chat(f'CALL faults__echo {{"text": "{text}"}}')
    body["tools"] = [{"type": "mcp", "server_label": "faults", "require_approval": "never"}]
    return client.post("/v1/chat/completions", json=body)


def test_a_server_added_through_one_replica_is_listed_and_used_by_the_other(replicas: Replicas) -> None:
    cmd = [sys.executable, "-m", "smg", "mcp", "--gateway", replicas.a.url, "--admin-key", ADMIN]
    added = subprocess.run(
        [*cmd, "add", "faults", "--url", replicas.faults], capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    with replicas.admin(replicas.b) as b:
        poll(lambda: "faults" in _servers(b))
        resp = _loop(b, "on replica b")
        assert resp.status_code == 200, resp.text
        calls = resp.json()["smg"]["tool_calls"]
        assert [(c["server"], c["tool"], c["status"]) for c in calls] == [("faults", "echo", "ok")]
    assert replicas.b.metric("smg_db_operations_total", storage_type="postgres") > 0


def test_a_key_revoked_on_one_replica_is_refused_on_the_other(replicas: Replicas) -> None:
    with replicas.admin(replicas.a) as a:
        created = a.post("/keys", json={"name": "shared"})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        headers = {"Authorization": f"Bearer {secret}"}
        b_models = replicas.b.url + "/v1/models"
        poll(lambda: httpx.get(b_models, headers=headers, timeout=10).status_code == 200)
        assert a.post("/keys/shared/revoke").json()["state"] == "revoked"
    poll(lambda: httpx.get(b_models, headers=headers, timeout=10).status_code == 401)


def _respond(gateway: Gateway, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    body = {"model": "mock-model", **body}
    return httpx.post(gateway.url + "/v1/responses", headers=headers, json=body, timeout=60)


def test_a_responses_chain_started_on_one_replica_continues_on_the_other(replicas: Replicas) -> None:
    first = _respond(replicas.a, input="hello from a")
    assert first.status_code == 200, first.text
    second = _respond(replicas.b, input="and b", previous_response_id=first.json()["id"])
    assert second.status_code == 200, second.text
    items = httpx.get(f"{replicas.a.url}/v1/responses/{second.json()['id']}/input_items", timeout=30)
    assert items.status_code == 200, items.text


def test_postgres_down_is_503_for_what_needs_it_and_full_service_after(
    replicas: Replicas, own_pg: PgServer
) -> None:
    with replicas.admin(replicas.a) as a, replicas.admin(replicas.b) as b_admin:
        assert a.post("/mcp/servers", json=_server("faults", replicas.faults)).status_code == 201
        created = a.post("/keys", json={"name": "before"})
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['secret']}"}
        poll(lambda: httpx.get(replicas.b.url + "/v1/models", headers=key, timeout=10).status_code == 200)
        poll(lambda: "faults" in _servers(b_admin))
        stored = _respond(replicas.a, key, input="kept across the outage")
        assert stored.status_code == 200, stored.text
        on_b = f"{replicas.b.url}/v1/responses/{stored.json()['id']}"
        own_pg.stop()
        assert_error(httpx.get(on_b, headers=key, timeout=30), 503, "response_store_error")
        assert_error(a.post("/keys", json={"name": "during"}), 503, "key_store_error")
        assert_error(a.get("/keys"), 503, "key_store_error")
        assert_error(
            a.post("/mcp/servers", json=_server("again", replicas.faults)), 503, "mcp_registry_error"
        )
        # No database needed: the key ring, the registry's servers and the worker are in memory.
        with httpx.Client(base_url=replicas.b.url, headers=key, timeout=60) as b:
            plain = b.post("/v1/chat/completions", json=chat("no database needed"))
            assert plain.status_code == 200, plain.text
            loop = _loop(b, "during the outage")
            assert loop.status_code == 200, loop.text
            assert [c["status"] for c in loop.json()["smg"]["tool_calls"]] == ["ok"]
            assert _servers(b_admin) == ["faults"]
        own_pg.start()
        poll(lambda: httpx.get(on_b, headers=key, timeout=30).status_code == 200)
        assert [k["name"] for k in a.get("/keys").json()["keys"]] == ["before"]
        assert a.post("/keys", json={"name": "after"}).status_code == 201
        assert a.post("/mcp/servers", json=_server("again", replicas.faults)).status_code == 201
        poll(lambda: _servers(b_admin) == ["again", "faults"])
    assert replicas.a.metric("smg_db_operations_total", storage_type="postgres", result="key_store_error") > 0


def test_a_background_run_of_one_replica_is_cancelled_through_the_other(pg_url: str) -> None:
    procs = Procs()
    try:
        _, worker = procs.worker("--hang")  # its reply never comes: the run stays in progress
        a, b = _start_together(procs, "--worker-urls", worker, "--database-url", pg_url)
        with httpx.Client(timeout=60) as http:
            queued = _respond(a, input="held", background=True)
            assert queued.status_code == 200, queued.text
            rid = queued.json()["id"]
            poll(lambda: http.get(f"{worker}/_smg/stats").json()["chat_requests"] == 1)
            cancelled = http.post(f"{b.url}/v1/responses/{rid}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert (cancelled.json()["id"], cancelled.json()["status"]) == (rid, "cancelled")
            for gateway in (a, b):
                assert http.get(f"{gateway.url}/v1/responses/{rid}").json()["status"] == "cancelled"
            errors = {"endpoint": "responses", "error_type": "client_disconnected"}
            assert a.metric("smg_router_request_errors_total", **errors) == 1  # its worker call cancelled
            assert http.post(f"{a.url}/v1/responses/{rid}/cancel").json()["status"] == "cancelled"
    finally:
        procs.stop_all()
