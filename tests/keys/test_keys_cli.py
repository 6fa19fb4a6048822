"""``smg keys create|list|show|revoke`` through a running gateway's admin API and offline on the
database file: the key is printed once, alone on stdout; ``list`` and ``show`` never print it, nor is
it anywhere in the file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests._procs import Procs
from tests.cli._run import smg
from tests.keys.conftest import ADMIN

pytestmark = pytest.mark.e2e


def _secrets_absent(secret: str, *outputs: str) -> bool:
    return all(secret not in out and secret.removeprefix("smg-") not in out for out in outputs)


def _file_bytes(database: Path) -> bytes:
    return b"".join(p.read_bytes() for p in database.parent.iterdir() if p.name.startswith(database.name))


def test_the_cli_through_a_running_gateway(procs: Procs, tmp_path: Path) -> None:
    _, worker = procs.worker()
    database = tmp_path / "smg.db"
    gateway = procs.gateway(
        "--worker-urls", worker, "--mcp-registry", str(database), "--admin-api-key", ADMIN
    )
    target = ("--gateway", gateway.url, "--admin-key", ADMIN)
    created = smg(
        "keys", *target, "create", "ci", "--models", "mock-model", "--rpm", "60", "--expires", "30d"
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("smg-") and len(created.stdout.splitlines()) == 1
    assert "shown only now" in created.stderr
    listed = smg("keys", "list", *target)
    shown = smg("keys", "show", "ci", "--json", *target)
    assert listed.returncode == shown.returncode == 0
    assert "ci" in listed.stdout and "active" in listed.stdout and "mock-model" in listed.stdout
    view = json.loads(shown.stdout)
    assert (view["models"], view["rpm"], view["state"]) == (["mock-model"], 60, "active")
    chat = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {secret}"}
    assert (
        httpx.post(gateway.url + "/v1/chat/completions", json=chat, headers=headers, timeout=30).status_code
        == 200
    )
    revoked = smg("keys", "revoke", "ci", *target)
    assert revoked.returncode == 0 and "revoked key 'ci'" in revoked.stdout
    assert (
        httpx.post(gateway.url + "/v1/chat/completions", json=chat, headers=headers, timeout=30).status_code
        == 401
    )
    again = smg("keys", *target, "create", "ci")
    assert again.returncode == 1 and "exists" in again.stderr and again.stdout == ""
    wrong_admin = smg("keys", "list", "--gateway", gateway.url, "--admin-key", "nope")
    assert wrong_admin.returncode == 1 and "HTTP 401" in wrong_admin.stderr
    outputs = (
        listed.stdout,
        listed.stderr,
        shown.stdout,
        revoked.stdout,
        smg("keys", "list", *target, "--json").stdout,
    )
    assert _secrets_absent(secret, *outputs)
    assert secret.encode() not in _file_bytes(database)


def test_the_cli_offline_on_the_database_file(tmp_path: Path) -> None:
    database = tmp_path / "state" / "smg.db"
    target = ("--registry", str(database))
    created = smg(
        "keys", "create", "nightly", "--servers", "clock,calc", "--tools", "clock__now", *target, "--json"
    )
    assert created.returncode == 0, created.stderr
    answer = json.loads(created.stdout)
    secret = answer["secret"]
    assert answer["key"]["servers"] == ["calc", "clock"] and answer["key"]["tools"] == ["clock__now"]
    listed = smg("keys", *target, "list")
    shown = smg("keys", *target, "show", "nightly")
    assert listed.returncode == shown.returncode == 0
    assert "nightly" in listed.stdout and "clock__now" in shown.stdout
    revoked = smg("keys", "revoke", "nightly", *target, "--json")
    assert json.loads(revoked.stdout)["state"] == "revoked"
    assert "revoked" in smg("keys", "list", *target).stdout
    missing = smg("keys", "show", "nobody", *target)
    assert missing.returncode == 1 and "no API key named 'nobody'" in missing.stderr
    bad = smg("keys", "create", "x", "--expires", "soon", *target)
    assert bad.returncode == 1 and "duration" in bad.stderr
    both = smg("keys", "list", "--gateway", "http://127.0.0.1:9", *target)
    assert both.returncode == 2 and "not both" in both.stderr
    assert _secrets_absent(secret, listed.stdout, shown.stdout, revoked.stdout)
    assert secret.encode() not in _file_bytes(database)
