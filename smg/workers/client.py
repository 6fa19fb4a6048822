"""HTTP client for gateway -> worker traffic. Model POSTs (chat, completions, embeddings) to plain-http
workers go through the lean `smg.workers.http1` client (docs/adr/0009-lean-worker-client.md); https
workers, discovery and probes through aiohttp (httpx's default transport is ~8x slower;
docs/adr/0002-aiohttp-worker-client.md). Maps transport failures onto the error tree.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import orjson
from yarl import URL

from smg.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from smg.workers.http1 import Http1Client, Http1Response
from smg.workers.worker import Worker

_URL_CACHE_SIZE = 1024
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # refused in a header (RFC 9110 section 5.5), tab allowed


class AiohttpResponse:
    """An open worker response: status and headers arrived, the body has not been read."""

    def __init__(self, resp: aiohttp.ClientResponse, worker: Worker) -> None:
        self._resp = resp
        self.worker = worker
        self.status = resp.status
        self.content_type = resp.headers.get("Content-Type", "application/json")

    async def read(self) -> bytes:
        """The whole body. Raises UpstreamError subclasses on transport failure."""
        with _mapped(self.worker):
            return await self._resp.read()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive. Raises UpstreamError subclasses when the stream breaks."""
        with _mapped(self.worker):
            async for chunk in self._resp.content.iter_any():
                yield chunk


UpstreamResponse = AiohttpResponse | Http1Response


@contextmanager
def _mapped(worker: Worker) -> Iterator[None]:
    """Translate aiohttp/asyncio failures into UpstreamError subclasses naming the worker."""
    url = worker.url
    try:
        yield
    except UpstreamError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"worker {url} timed out", worker=url) from exc
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamProtocolError(f"worker {url} broke the response", worker=url) from exc
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise UpstreamConnectError(f"worker {url} is unreachable", worker=url) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamProtocolError(f"worker {url}: {type(exc).__name__}", worker=url) from exc


_DEFAULT_LINES = "Accept: */*\r\nAccept-Encoding: identity\r\n"


def _head(worker: Worker, headers: Mapping[str, str]) -> bytes:
    """Request header lines for `Http1Client`, the ones aiohttp would send (Host and Content-Length
    are added there), encoded as aiohttp encodes them (UTF-8). Values that come from a client are
    printable ASCII by then (the edge refuses others), so they go out byte for byte.

    Raises ValueError for a control character other than tab in a name or value, as aiohttp does.
    """
    key = worker.api_key
    items: Iterable[tuple[str, str]]
    if "Accept" in headers or "Accept-Encoding" in headers or "Authorization" in headers:
        # A caller's value takes the default's place (a dict merge keeps the first position).
        merged = {"Accept": "*/*", "Accept-Encoding": "identity", **headers}
        if key and "Authorization" in merged:
            merged["Authorization"] = f"Bearer {key}"
        items, text = merged.items(), ""
    else:  # the usual case: the defaults, then the caller's headers
        items, text = headers.items(), _DEFAULT_LINES
    extra: list[tuple[str, str]] = []
    if "Content-Type" not in headers and "content-type" not in headers:
        extra.append(("Content-Type", "application/octet-stream"))
    if key and "Authorization" not in headers:
        extra.append(("Authorization", f"Bearer {key}"))
    for k, v in (*items, *extra) if extra else items:
        line = f"{k}: {v}"
        # isprintable() is the fast test; it also refuses tab and some non-ASCII, hence the second one.
        if not line.isprintable() and _CONTROL.search(line):
            raise ValueError(f"control character in the HTTP header {k!r}")
        text += line + "\r\n"
    return text.encode()


class WorkerClient:
    """Gateway -> worker HTTP. Chat POSTs to plain-http workers go through `Http1Client`; https,
    model discovery and health probes through one pooled aiohttp session. Create and close inside
    the running loop."""

    def __init__(self, *, request_timeout_secs: float, connect_timeout_secs: float = 10.0) -> None:
        self._http1 = Http1Client(
            request_timeout_secs=request_timeout_secs, connect_timeout_secs=connect_timeout_secs
        )
        # For a stream the request timeout bounds each read, otherwise the whole exchange.
        self._stream_timeout = aiohttp.ClientTimeout(
            sock_connect=connect_timeout_secs, sock_read=request_timeout_secs
        )
        self._whole_timeout = aiohttp.ClientTimeout(
            total=request_timeout_secs, sock_connect=connect_timeout_secs
        )
        self._urls: dict[str, URL] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WorkerClient:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            json_serialize=lambda o: orjson.dumps(o).decode(),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),  # workers' cookies are neither kept nor sent back
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._http1.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("WorkerClient used outside its context")
        return self._session

    @staticmethod
    def _auth(worker: Worker, headers: Mapping[str, str]) -> dict[str, str]:
        # identity: bodies are relayed as bytes without their Content-Encoding, so ask for none.
        out = {"Accept-Encoding": "identity", **headers}
        if worker.api_key:
            out["Authorization"] = f"Bearer {worker.api_key}"
        return out

    def post(
        self, worker: Worker, path: str, body: bytes, *, headers: Mapping[str, str], stream: bool
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        """The exchange that POSTs ``body`` to the worker: ``async with`` it; entering returns once the
        status line and headers arrived.

        For a stream the request timeout bounds each read, otherwise the whole exchange.
        Entering raises UpstreamConnectError, UpstreamTimeout or UpstreamProtocolError. A control
        character in a header raises ValueError before anything is sent.
        """
        if worker.url.startswith("http://"):
            return self._http1.post(worker, path, body, _head(worker, headers), stream=stream)
        return self._aiohttp_post(worker, path, body, headers, stream)

    @asynccontextmanager
    async def _aiohttp_post(
        self, worker: Worker, path: str, body: bytes, headers: Mapping[str, str], stream: bool
    ) -> AsyncIterator[AiohttpResponse]:
        timeout = self._stream_timeout if stream else self._whole_timeout
        with _mapped(worker):
            async with self.session.post(
                self._url(worker.url, path), data=body, headers=self._auth(worker, headers), timeout=timeout
            ) as resp:
                yield AiohttpResponse(resp, worker)

    def _url(self, base: str, path: str) -> URL:
        """The parsed URL, cached: parsing it again costs more than a dict lookup on every request."""
        key = base + path
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[key] = URL(key)
        return url

    async def get_json(self, worker: Worker, path: str, *, timeout_secs: float) -> Any:
        """GET a JSON document. Raises UpstreamError (UpstreamProtocolError on non-2xx or bad JSON)."""
        timeout = aiohttp.ClientTimeout(total=timeout_secs)
        with _mapped(worker):
            async with self.session.get(
                worker.url + path, headers=self._auth(worker, {}), timeout=timeout
            ) as r:
                body = await r.read()
                if r.status >= 300:
                    raise UpstreamProtocolError(
                        f"worker {worker.url}{path} answered {r.status}", worker=worker.url
                    )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"worker {worker.url}{path} sent invalid JSON", worker=worker.url
            ) from None

    async def probe(self, worker: Worker, path: str, *, timeout_secs: float) -> bool:
        """True when GET ``path`` answers 2xx within the timeout."""
        timeout = aiohttp.ClientTimeout(total=timeout_secs)
        try:
            with _mapped(worker):
                async with self.session.get(
                    worker.url + path, headers=self._auth(worker, {}), timeout=timeout
                ) as r:
                    await r.read()
                    return 200 <= r.status < 300
        except UpstreamError:
            return False
