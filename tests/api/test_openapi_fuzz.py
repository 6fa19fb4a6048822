"""schemathesis against the gateway's own OpenAPI document, in-process over ASGI, with a scripted worker
process behind it: no request generated from the schema (valid or not) gets a 5xx, every rejection is
an OpenAI-shaped error whose code is one of the documented ones, repeated in X-SMG-Error-Code, and every
response's status and body conform to the document (its errors are the gateway's own shape,
`smg.api.openapi`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    CheckContext,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response

import smg.errors
import smg.mcp.errors
import smg.protocol
import tests._hypothesis_patching  # noqa: F401  # readable hypothesis failures, see there
from smg.app import create_app
from smg.settings import (
    AuthSettings,
    HealthSettings,
    RetrySettings,
    ServerSettings,
    Settings,
    WorkerSettings,
)
from smg.testing.processes import running
from smg.testing.worker import READY_PREFIX

pytestmark = pytest.mark.fuzz

# POST /mcp/servers is left out: a generated stdio spec would start an arbitrary command on this host
# (tests/mcp and tests/api/test_mcp_admin.py cover its validation). POST /workers is kept:
# registering probes the URL, and a generated URL never reaches a live worker.


def _documented_codes() -> set[str]:
    """Codes of the error classes that docs/api.md names."""
    api_doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    codes = set()
    for module in (smg.errors, smg.mcp.errors, smg.protocol):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, smg.errors.SmgError):
                codes.add(value.code)
    return {code for code in codes if f"`{code}`" in api_doc}


DOCUMENTED = _documented_codes()
DATA_KEY, ADMIN_KEY = "fuzz-data-key", "fuzz-admin-key"


@pytest.fixture(scope="module")
def worker_url() -> Iterator[str]:
    cmd = [sys.executable, "-m", "smg.testing.worker", "--host", "127.0.0.1", "--port", "0"]
    with running(cmd, READY_PREFIX) as (_, url):
        yield url


@pytest.fixture(scope="module")
def api_schema(worker_url: str) -> Any:
    app = create_app(
        Settings(
            server=ServerSettings(host="127.0.0.1", port=0, prometheus_port=0),
            workers=WorkerSettings(urls=(worker_url,), policy="round_robin", request_timeout_secs=10),
            retry=RetrySettings(initial_backoff_ms=1, max_backoff_ms=5),
            health=HealthSettings(interval_secs=3600),
            auth=AuthSettings(api_keys=(DATA_KEY,), admin_api_keys=(ADMIN_KEY,)),
        )
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(method="POST", path="/mcp/servers")


def openai_shaped_rejection(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 4xx carries {"error": {message, type, param, code}} with a documented code, also in the header."""
    if response.status_code < 400:
        return None
    body = orjson.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] in DOCUMENTED, error
    assert response.headers.get("x-smg-error-code") == [error["code"]], response.headers
    return True


def _aim_at_the_worker(body: dict[str, Any]) -> None:
    """Name the served model and give generated messages a role, so bodies get past the first checks
    and reach the worker (streaming or not); everything else stays as generated."""
    if isinstance(body.get("model"), str):
        body["model"] = "mock-model"
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            message.setdefault("role", "user")


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_5xx_and_every_rejection_is_openai_shaped(case: Case) -> None:
    if case.path == "/v1/chat/completions" and isinstance(case.body, dict):
        _aim_at_the_worker(case.body)
    key = DATA_KEY if case.path.startswith("/v1/") else ADMIN_KEY
    case.call_and_validate(
        headers={"Authorization": f"Bearer {key}"},
        checks=[
            not_a_server_error,
            openai_shaped_rejection,
            status_code_conformance,
            response_schema_conformance,
        ],
    )
