"""``smg mcp`` against a running gateway: the admin API's ``/mcp`` endpoints over HTTP."""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from smg.errors import SmgError
from smg.mcp.config import ServerSpec


class GatewayError(SmgError):
    """The admin API answered with an error (``http_status``, ``error_code``) or could not be reached."""

    code = "gateway_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        findings: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.findings = findings or []


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
        headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=self._url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> GatewayBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def _request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, http_timeout: float | None = None
    ) -> Any:
        try:
            resp = await self._client.request(method, path, json=body, timeout=http_timeout or self._timeout)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise GatewayError(f"cannot reach the gateway at {self._url}: {reason}") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            raise _error_from(resp.status_code, data, resp.text)
        if not isinstance(data, dict):
            raise GatewayError(f"the gateway at {self._url} answered {method} {path} with no JSON object")
        return data

    async def list_servers(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "/mcp/servers"))["servers"])

    async def show(self, name: str) -> dict[str, Any]:
        return dict(await self._request("GET", _path("mcp", "servers", name)))

    async def add(self, spec: ServerSpec, *, dry_run: bool) -> dict[str, Any]:
        return dict(await self._request("POST", "/mcp/servers", body={**spec.to_dict(), "dry_run": dry_run}))

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
                    found = (await self._request("POST", _path("mcp", "servers", server, "refresh")))["tools"]
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
        return list((await self._request("GET", "/mcp/check"))["servers"])


def _error_from(status: int, data: Any, text: str) -> GatewayError:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        code = error.get("code")
        found = error.get("findings")
        return GatewayError(
            f"HTTP {status}: {message}",
            http_status=status,
            error_code=str(code) if code is not None else None,
            findings=[f for f in found if isinstance(f, dict)] if isinstance(found, list) else None,
        )
    return GatewayError(f"HTTP {status}: {text.strip()[:200]}", http_status=status)


# --- running ----------------------------------------------------------------------------------------
