"""How ``smg`` subcommands talk to a running gateway's admin API, and how they say it failed.

Every subcommand words an unreachable gateway the same way::

    cannot reach the gateway at http://127.0.0.1:30000 (connection refused)

with the reason taken from the operating system's error (``connection refused``, ``name or service not
known``, ...) or the kind of timeout, never from the HTTP library's wording.
"""

from __future__ import annotations

import os
import socket
from types import TracebackType
from typing import Any

import httpx

from smg.errors import SmgError


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


def unreachable_reason(exc: httpx.HTTPError, timeout: float) -> str:
    """A short, lower-case reason for a request that got no HTTP answer (``timeout``: its bound)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "not an http:// or https:// URL"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed without an answer"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return (cause.strerror or "host name not found").lower()
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    return (str(exc) or type(exc).__name__).lower()


class GatewayClient:
    """JSON requests to the gateway at ``url`` with ``admin_key`` as a Bearer token.

    ``transport`` replaces the network (tests). Use as an async context manager.
    """

    def __init__(
        self,
        url: str,
        admin_key: str | None,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, http_timeout: float | None = None
    ) -> dict[str, Any]:
        """The JSON object the gateway answered. Raises GatewayError: unreachable, an error status (with
        the API's message, code and findings), or an answer that is not a JSON object."""
        bound = http_timeout or self.timeout
        try:
            resp = await self._client.request(method, path, json=body, timeout=bound)
        except httpx.HTTPError as exc:
            raise GatewayError(
                f"cannot reach the gateway at {self.url} ({unreachable_reason(exc, bound)})"
            ) from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            raise _error_from(resp.status_code, data, resp.text)
        if not isinstance(data, dict):
            raise GatewayError(f"the gateway at {self.url} answered {method} {path} with no JSON object")
        return data


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
