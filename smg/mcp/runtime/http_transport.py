"""`AiohttpTransport`: an ``httpx2`` transport that sends requests with aiohttp.

The mcp SDK talks HTTP through an ``httpx2.AsyncClient``; its default transport (httpcore2) costs about
0.4 ms of CPU per MCP call more than aiohttp does. This transport keeps the client (its event hooks,
auth, cookies, redirects and content decoding stay httpx2's) and replaces only the connection layer:
keep-alive connections, limits and timeouts as httpx2's defaults have them, the same TLS context, the
request's headers exactly as httpx2 built them, and aiohttp's failures raised as the httpx2 exceptions
httpcore2 would raise. Used on asyncio, when no proxy is set in the environment.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from urllib.request import getproxies

import aiohttp
import httpx2
from yarl import URL

__all__ = ["AiohttpTransport"]

_MAX_CONNECTIONS = 100  # httpx2's default limits
_KEEPALIVE_SECS = 5.0
_MAX_HEADER_BYTES = 16 * 1024  # about h11's bound on a response head; aiohttp's default is 8 KiB a line
_DROPPED = frozenset({"content-length", "transfer-encoding"})  # aiohttp frames the body itself
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")  # send httpx2's only


@contextmanager
def _mapped(request: httpx2.Request, *, reading: bool) -> Iterator[None]:
    """aiohttp's failures as the httpx2 exceptions (with their texts) httpcore2 raises for them."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx2.ConnectTimeout(str(exc) or "timed out connecting", request=request) from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx2.ReadTimeout(str(exc) or "timed out reading", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx2.ConnectError(str(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx2.RemoteProtocolError(str(exc) or "Server disconnected", request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        raise httpx2.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        error = httpx2.ReadError if reading else httpx2.ConnectError
        raise error(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx2.TransportError(str(exc) or type(exc).__name__, request=request) from exc


class _Body(httpx2.AsyncByteStream):
    """A response body as it arrives; closing it early closes the connection (it cannot be reused)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request, reading=True):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Give it to ``httpx2.AsyncClient(transport=...)``; closed with the client."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None

    @staticmethod
    def usable() -> bool:
        """Whether the running event loop is asyncio's (aiohttp runs on no other) and no proxy is set
        in the environment (httpx2 honours those only with its own transport)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        proxies = getproxies()
        return not any(proxies.get(scheme) for scheme in ("http", "https", "all"))

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: aiohttp wants the running loop
            connector = aiohttp.TCPConnector(limit=_MAX_CONNECTIONS, keepalive_timeout=_KEEPALIVE_SECS)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx2 keeps the cookies
                auto_decompress=False,  # httpx2 decodes by Content-Encoding
                trust_env=False,  # httpx2 routes proxied URLs to its own proxy transports
                max_line_size=_MAX_HEADER_BYTES,
                max_field_size=_MAX_HEADER_BYTES,
            )
        return self._session

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx2.create_ssl_context()  # httpx2's default: certifi, SSL_CERT_FILE/DIR
        return self._ssl

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._open()
        limits = request.extensions.get("timeout", {})
        connect, pool, read = limits.get("connect"), limits.get("pool"), limits.get("read")
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _DROPPED]
        body = await request.aread()
        with _mapped(request, reading=False):
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,  # httpx2 follows (or not) itself
                timeout=timeout,
                skip_auto_headers=_NO_AUTO_HEADERS,
                ssl=self._ssl_context() if request.url.scheme == "https" else True,
            )
        return httpx2.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
