"""The MCP endpoint is on the data plane (data keys); the admin API under /mcp stays on the admin plane."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from smg.api.auth import ADMIN, DATA, plane_of
from tests._procs import Procs
from tests.mcp.endpoint._stack import mcp_client, start


@pytest.mark.parametrize("path", ["/mcp", "/mcp/", "/mcp/scoped/faults", "/mcp/scoped/servers"])
def test_the_mcp_endpoint_is_on_the_data_plane(path: str) -> None:
    assert plane_of(path) == DATA


@pytest.mark.parametrize(
    "path",
    [
        "/mcp/servers",
        "/mcp/servers/faults",
        "/mcp/servers/faults/refresh",
        "/mcp/servers/faults/tools/echo/call",
        "/mcp/tools",
        "/mcp/check",
        "/mcp/scoped",
        "/mcpx",
    ],
)
def test_the_mcp_admin_api_stays_on_the_admin_plane(path: str) -> None:
    assert plane_of(path) == ADMIN


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.mark.e2e
async def test_with_keys_set_the_endpoint_needs_a_data_key_and_the_admin_api_an_admin_key(
    procs: Procs, tmp_path: Path
) -> None:
    keys = ("--api-key", "data-key", "--admin-api-key", "admin-key")
    stack = start(procs, tmp_path, *keys, admin_key="admin-key")
    url = stack.gw.url

    def post(path: str, key: str | None) -> httpx.Response:
        headers = {**ACCEPT, **({"Authorization": f"Bearer {key}"} if key else {})}
        return httpx.post(url + path, json=INITIALIZE, headers=headers, timeout=30)

    for path in ("/mcp", "/mcp/scoped/faults"):
        assert post(path, None).status_code == 401
        assert post(path, "wrong").status_code == 401
        assert post(path, "admin-key").status_code == 401  # an admin key is not a data key
        answered = post(path, "data-key")
        assert answered.status_code == 200, answered.text
    refused = post("/mcp", None)
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert refused.headers["x-smg-error-code"] == "invalid_api_key"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:  # the admin API under /mcp
        assert (
            await http.get("/mcp/servers", headers={"Authorization": "Bearer data-key"})
        ).status_code == 403
        assert (
            await http.get("/mcp/servers", headers={"Authorization": "Bearer admin-key"})
        ).status_code == 200
    async with mcp_client(url + "/mcp", key="data-key") as client:
        echoed = await client.call_tool("faults__echo", {"text": "with a key"})
    assert not echoed.is_error
