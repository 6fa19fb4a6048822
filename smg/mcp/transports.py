"""Build the SDK transport of one server, with its secrets resolved now (at connect time)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack

import httpx2
from mcp.client import Transport
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from smg.mcp.config import ServerSpec, resolve_secrets
from smg.mcp.stdio import StderrPipe, stdio_parameters

# The SDK's defaults for MCP over HTTP: a response stream may stay open for minutes.
_HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)


async def open_transport(
    spec: ServerSpec, environ: Mapping[str, str], stack: AsyncExitStack
) -> tuple[Transport, StderrPipe | None]:
    """The transport of ``spec`` (not yet entered) and, for stdio, the pipe that receives the child's
    stderr. Resources are pushed onto ``stack``. Raises UnresolvedSecret."""
    if spec.transport == "stdio":
        params = stdio_parameters(spec, environ)
        pipe = await stack.enter_async_context(StderrPipe(spec.name))
        assert pipe.errlog is not None
        return stdio_client(params, errlog=pipe.errlog), pipe
    assert spec.url is not None  # ServerSpec guarantees a URL for the HTTP transports
    headers = resolve_secrets(spec.headers, environ, server=spec.name)
    if spec.transport == "sse":
        return sse_client(spec.url, headers=headers), None
    # streamable_http_client leaves a client it is given open: the stack closes it after the session.
    http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=_HTTP_TIMEOUT))
    return streamable_http_client(spec.url, http_client=http), None
