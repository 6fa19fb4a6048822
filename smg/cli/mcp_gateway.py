"""``smg mcp`` against a running gateway: the admin API's ``/mcp`` endpoints over HTTP."""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from smg.cli.gateway_http import GatewayClient, GatewayError
from smg.mcp.registry.config import ServerSpec

__all__ = ["GatewayBackend", "GatewayError"]

# The gateway bounds its own connection to a server it validates, refreshes or checks (30 s, plus closing
# the probe's session): those requests wait at least that long, so the gateway's answer (which names the
# timeout it met) arrives rather than a timeout of the request.
_GATEWAY_PROBE_SECS = 45.0


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(part, safe="") for part in parts)


class GatewayBackend:
    """The admin API of the gateway at ``url`` (``/mcp/...``), with ``admin_key`` as a Bearer token."""

    def __init__(
        self,
        url: str,
        admin_key: str | None,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = GatewayClient(url, admin_key, timeout=timeout, transport=transport)
        self._timeout = timeout

    async def __aenter__(self) -> GatewayBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def _request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, http_timeout: float | None = None
    ) -> Any:
        return await self._client.request(method, path, body=body, http_timeout=http_timeout)

    async def list_servers(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "/mcp/servers"))["servers"])

    async def show(self, name: str) -> dict[str, Any]:
        return dict(await self._request("GET", _path("mcp", "servers", name)))

    async def add(self, spec: ServerSpec, *, dry_run: bool) -> dict[str, Any]:
        body = {**spec.to_dict(), "dry_run": dry_run}
        probing = max(self._timeout, _GATEWAY_PROBE_SECS)
        return dict(await self._request("POST", "/mcp/servers", body=body, http_timeout=probing))

    async def remove(self, name: str) -> dict[str, Any]:
        return dict(await self._request("DELETE", _path("mcp", "servers", name)))

    async def tools(self, name: str | None, *, refresh: bool) -> tuple[list[dict[str, Any]], list[str]]:
        if name is None and not refresh:
            return list((await self._request("GET", "/mcp/tools"))["tools"]), []
        names = [name] if name is not None else [s["name"] for s in await self.list_servers()]
        listing: list[dict[str, Any]] = []
        warnings: list[str] = []
        for server in names:
            try:
                if refresh:
                    path = _path("mcp", "servers", server, "refresh")
                    probing = max(self._timeout, _GATEWAY_PROBE_SECS)
                    found = (await self._request("POST", path, http_timeout=probing))["tools"]
                else:
                    found = (await self.show(server)).get("tools") or []
            except GatewayError as exc:
                if name is not None:
                    raise
                warnings.append(f"MCP server {server!r} skipped: {exc.message}")
                continue
            listing += [{"server": server, **tool} for tool in found]
        return listing, warnings

    async def call(self, name: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        view = await self.show(name)
        listed = view.get("tools") or []
        by_exposed = {t.get("exposed_name"): t.get("name") for t in listed}
        real = tool if any(t.get("name") == tool for t in listed) else by_exposed.get(tool, tool)
        timeouts = view.get("tool_timeouts") or {}
        tool_timeout = float(timeouts.get(real, view.get("tool_timeout_secs") or 0))
        path = _path("mcp", "servers", name, "tools", real, "call")
        body = {"arguments": arguments}
        return dict(await self._request("POST", path, body=body, http_timeout=tool_timeout + self._timeout))

    async def check(self) -> list[dict[str, Any]]:
        probing = max(self._timeout, _GATEWAY_PROBE_SECS)
        return list((await self._request("GET", "/mcp/check", http_timeout=probing))["servers"])
