"""`capped_bodies`: an ``httpx2`` response hook that bounds how much of any MCP-over-HTTP response body is
ever held, whatever transport (aiohttp, httpcore2, a proxy) carried it.

The hook runs before the body is read and wraps the response's byte stream:

- ``application/json`` (one JSON-RPC message): read up to ``limit`` bytes; past that, reading stops,
  the connection is closed, and the body becomes the JSON-RPC error ``MESSAGE_TOO_LARGE`` for the
  request that was sent, so that request fails alone and the session goes on;
- ``text/event-stream``: passed through `SseFilter`, which replaces each event over ``sse_limit``;
- anything else: up to ``limit`` bytes, then ``httpx2.RemoteProtocolError``.

gzip and deflate bodies are inflated here, in bounded steps, and the limits apply to the inflated bytes
(the ``Content-Encoding`` header is removed so httpx2 does not inflate them again).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator

import httpx2
from mcp.types import RequestId

from smg.mcp.runtime.framing import too_large
from smg.mcp.runtime.sse_filter import SseFilter

__all__ = ["capped_bodies"]

logger = logging.getLogger("smg.mcp")
_STEP = 256 * 1024  # most bytes one inflate step produces


def capped_bodies(*, limit: int, sse_limit: int, name: str) -> Callable[[httpx2.Response], Awaitable[None]]:
    """The response hook (see the module docstring); ``name`` names the server in log lines."""

    async def cap(response: httpx2.Response) -> None:
        encodings = [e.strip().lower() for e in response.headers.get_list("content-encoding", True)]
        inflate = _Inflate(encodings[0]) if encodings in (["gzip"], ["deflate"]) else None
        if inflate is not None:
            del response.headers["content-encoding"]
        content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        body: _Capped
        if content_type == "text/event-stream":
            body = _SseBody(response, inflate, limit=sse_limit, name=name)
        elif content_type == "application/json":
            body = _JsonBody(response, inflate, limit=limit, name=name)
        else:
            body = _Capped(response, inflate, limit=limit, name=name)
        response.stream = body

    return cap


class _Inflate:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), inflated in bounded steps."""

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._z = zlib.decompressobj(zlib.MAX_WBITS | (0 if self._deflate else 16))
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._z.decompress(data, _STEP)
            except zlib.error as exc:
                if self._deflate and not self._started:
                    self._z, self._started = zlib.decompressobj(-zlib.MAX_WBITS), True
                    continue
                raise httpx2.DecodingError(str(exc)) from exc
            self._started = True
            if out:
                yield out
            data = self._z.unconsumed_tail


class _Capped(httpx2.AsyncByteStream):
    """The body of ``response`` (inflated if needed), failing once it passes ``limit`` bytes."""

    def __init__(self, response: httpx2.Response, inflate: _Inflate | None, *, limit: int, name: str) -> None:
        self._inner = response.stream
        self._request = response.request
        self._inflate = inflate
        self._limit = limit
        self._name = name

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        assert isinstance(self._inner, httpx2.AsyncByteStream)
        chunks = self._inner.__aiter__()
        try:
            async for chunk in chunks:
                if self._inflate is None:
                    yield chunk
                else:
                    for piece in self._inflate.feed(chunk):
                        yield piece
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        pieces = self._pieces()
        try:
            async for piece in pieces:
                size += len(piece)
                if size > self._limit:
                    raise httpx2.RemoteProtocolError(
                        f"response body over {self._limit} bytes", request=self._request
                    )
                yield piece
        finally:
            await pieces.aclose()

    async def aclose(self) -> None:
        assert isinstance(self._inner, httpx2.AsyncByteStream)
        await self._inner.aclose()

    def _request_id(self) -> RequestId | None:
        """The id of the JSON-RPC request this body answers (None when the request was no request)."""
        try:
            message = json.loads(self._request.content)
        except (httpx2.RequestNotRead, ValueError):
            return None
        if not isinstance(message, dict) or "method" not in message:
            return None
        found = message.get("id")
        return (
            found
            if isinstance(found, str) or (isinstance(found, int) and not isinstance(found, bool))
            else None
        )


class _JsonBody(_Capped):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        size = 0
        pieces = self._pieces()
        try:
            async for piece in pieces:
                size += len(piece)
                if size > self._limit:
                    break
                parts.append(piece)
        finally:
            await pieces.aclose()
        if size <= self._limit:
            yield b"".join(parts)
            return
        parts.clear()
        request_id = self._request_id()
        if request_id is None:
            raise httpx2.RemoteProtocolError(f"response body over {self._limit} bytes", request=self._request)
        logger.warning(
            "MCP server %s answered request %r with more than %d bytes: discarded",
            self._name,
            request_id,
            self._limit,
            extra={"mcp_server": self._name},
        )
        message = too_large(request_id, self._limit).message
        yield message.model_dump_json(by_alias=True, exclude_unset=True).encode()


class _SseBody(_Capped):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        request_id = self._request_id() if self._request.method == "POST" else None
        events = SseFilter(self._limit, request_id=request_id, name=self._name)
        pieces = self._pieces()
        try:
            async for piece in pieces:
                out = events.feed(piece)
                if out:
                    yield out
        finally:
            await pieces.aclose()
