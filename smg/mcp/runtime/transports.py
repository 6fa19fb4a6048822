"""Build the SDK transport of one server, with its secrets resolved now (at connect time).

Every transport reads at most ``max_message_bytes`` of one message (see `smg.mcp.runtime.framing`):
stdio through `bounded_stdio_client`, HTTP through the `capped_bodies` response hook.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import httpx2
from mcp.client import Transport
from mcp.client.sse import sse_client
from mcp.client.streamable_http import DEFAULT_MAX_SSE_EVENT_SIZE, MCP_SESSION_ID, streamable_http_client

from smg.mcp.registry.config import ServerSpec, resolve_secrets
from smg.mcp.runtime.framing import DEFAULT_MESSAGE_LIMIT
from smg.mcp.runtime.hooks import HeadersHook
from smg.mcp.runtime.http_limits import capped_bodies
from smg.mcp.runtime.http_transport import AiohttpTransport
from smg.mcp.runtime.stdio import StderrPipe, stdio_parameters
from smg.mcp.runtime.stdio_client import bounded_stdio_client

logger = logging.getLogger("smg.mcp")

# The SDK's defaults for MCP over HTTP: a response stream may stay open for minutes.
_HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
# The legacy SSE client reads events of at most the SDK's default size (it takes no other): events are
# replaced below that, so an oversized one fails its request instead of the whole session.
_LEGACY_SSE_LIMIT = DEFAULT_MAX_SSE_EVENT_SIZE - 64 * 1024
_SSE_SLACK = 64 * 1024  # between our event limit and the SDK's, which counts decoded text

RequestHook = Callable[[httpx2.Request], Awaitable[None]]
ResponseHook = Callable[[httpx2.Response], Awaitable[None]]


def _request_hooks(headers_hook: HeadersHook | None) -> dict[str, list[RequestHook]]:
    """httpx2 ``event_hooks`` that add ``headers_hook()`` to every request. The SDK sends each message
    in the context of the task that sent it, so the hook sees that caller's context (its current span).
    A failing hook is logged and the request goes out without the headers."""
    if headers_hook is None:
        return {}

    async def add_headers(request: httpx2.Request) -> None:
        try:
            extra = headers_hook()
        except Exception:  # the telemetry guard: extra headers must never fail an MCP request
            logger.exception("MCP headers hook failed")
            return
        for key, value in extra.items():
            request.headers[key] = value

    return {"request": [add_headers]}


def _session_gone_hook(on_session_gone: Callable[[str], None]) -> ResponseHook:
    """A response hook calling ``on_session_gone(method)`` on a 404 to an HTTP ``method`` request that
    carried a session ID: the server ended that session and the client must open a new one (streamable
    HTTP, 2025-11-25). The SDK reports such a 404 only as a JSON-RPC error whose code varies by server."""

    async def check(response: httpx2.Response) -> None:
        if response.status_code == 404 and MCP_SESSION_ID in response.request.headers:
            on_session_gone(response.request.method)

    return check


async def open_transport(
    spec: ServerSpec,
    environ: Mapping[str, str],
    stack: AsyncExitStack,
    *,
    headers_hook: HeadersHook | None = None,
    on_session_gone: Callable[[str], None] | None = None,
    max_message_bytes: int = DEFAULT_MESSAGE_LIMIT,
) -> tuple[Transport, StderrPipe | None]:
    """The transport of ``spec`` (not yet entered) and, for stdio, the pipe that receives the child's
    stderr. Resources are pushed onto ``stack``. ``headers_hook`` adds headers to every HTTP request
    (ignored for stdio); ``on_session_gone`` is called with the HTTP method when a streamable-HTTP
    server answers 404 to a request of the session; a response over ``max_message_bytes`` fails its
    request alone. Raises UnresolvedSecret."""
    limit = max_message_bytes
    if spec.transport == "stdio":
        params = stdio_parameters(spec, environ)
        pipe = await stack.enter_async_context(StderrPipe(spec.name))
        assert pipe.errlog is not None
        return bounded_stdio_client(params, limit=limit, name=spec.name, errlog=pipe.errlog), pipe
    assert spec.url is not None  # ServerSpec guarantees a URL for the HTTP transports
    headers = resolve_secrets(spec.headers, environ, server=spec.name)
    hooks: dict[str, list[Any]] = dict(_request_hooks(headers_hook))
    if spec.transport == "sse":
        hooks["response"] = [
            capped_bodies(limit=limit, sse_limit=min(limit, _LEGACY_SSE_LIMIT), name=spec.name)
        ]

        def sse_http_client(  # the SDK's default client, plus the hooks and the aiohttp transport
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            transport = AiohttpTransport() if AiohttpTransport.usable() else None
            return httpx2.AsyncClient(
                headers=headers,
                timeout=timeout or _HTTP_TIMEOUT,
                auth=auth,
                event_hooks=hooks,
                transport=transport,
            )

        return sse_client(spec.url, headers=headers, httpx_client_factory=sse_http_client), None
    # streamable_http_client leaves a client it is given open: the stack closes it after the session.
    # Its connections are aiohttp's (cheaper per call than httpcore2's) when the loop is asyncio.
    transport = AiohttpTransport() if AiohttpTransport.usable() else None
    hooks["response"] = [capped_bodies(limit=limit, sse_limit=limit, name=spec.name)]
    if on_session_gone is not None:
        hooks["response"].append(_session_gone_hook(on_session_gone))
    http = await stack.enter_async_context(
        httpx2.AsyncClient(headers=headers, timeout=_HTTP_TIMEOUT, event_hooks=hooks, transport=transport)
    )
    return streamable_http_client(spec.url, http_client=http, max_sse_event_size=limit + _SSE_SLACK), None
