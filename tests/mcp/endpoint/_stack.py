"""A gateway serving the ``faults`` MCP server (real processes), and MCP clients of its endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests._procs import Gateway, Procs


@dataclass(frozen=True)
class Stack:
    gw: Gateway
    faults_url: str

    @property
    def mcp(self) -> str:
        return self.gw.url + "/mcp"


def add_server(gw: Gateway, name: str, url: str, *, admin_key: str | None = None, **extra: Any) -> None:
    spec = {"name": name, "transport": "streamable-http", "url": url, **extra}
    headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    added = httpx.post(gw.url + "/mcp/servers", json=spec, headers=headers, timeout=60)
    assert added.status_code == 201, added.text


def start(procs: Procs, tmp_path: Path, *gateway_args: str, admin_key: str | None = None) -> Stack:
    """The faults server registered as ``faults`` with a gateway started with ``gateway_args`` (through
    the admin API, with ``admin_key`` when the gateway has one)."""
    _, faults = procs.mcp_faults()
    gw = procs.gateway("--mcp-registry", str(tmp_path / "registry.db"), *gateway_args)
    add_server(gw, "faults", faults, admin_key=admin_key, tool_timeout_secs=30)
    return Stack(gw, faults)


@asynccontextmanager
async def mcp_client(url: str, *, key: str | None = None, **options: Any) -> AsyncIterator[Client]:
    """The mcp SDK's `Client` on ``url`` over streamable HTTP, presenting ``key`` as a bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http,
        Client(streamable_http_client(url, http_client=http), **options) as client,
    ):
        yield client
