"""The edge of the gateway, one pure ASGI middleware: request id, HTTP metrics, auth, body limit and
admission, in that order, then the request's endpoint. The admission permit is held until the response
is fully sent (streams too)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smg.api.admission import Admission
from smg.api.auth import DATA, KeyAuth, plane_of
from smg.api.errors import error_response
from smg.console import is_console_path, secured
from smg.errors import InvalidRequest, PayloadTooLarge, SmgError
from smg.keys.scope import attach
from smg.spans import ServerSpan, Tracer

log = logging.getLogger("smg.api")
_REQUEST_ID = b"x-request-id"
_UNPRINTABLE = re.compile(rb"[^\t\x20-\x7e]")
_ERROR_CODE = b"x-smg-error-code"
CHAT_ROUTE = "/v1/chat/completions"
COMPLETIONS_ROUTE = "/v1/completions"
EMBEDDINGS_ROUTE = "/v1/embeddings"


class HttpObserver(Protocol):
    def on_start(self) -> None: ...
    def on_end(self, *, method: str, path: str, status: int, error_code: str, duration: float) -> None: ...


class Edge(Protocol):
    """What the edge needs from the application context (`smg.context.AppContext` provides it)."""

    @property
    def max_body(self) -> int: ...
    @property
    def auth(self) -> KeyAuth: ...
    @property
    def admission(self) -> Admission: ...
    @property
    def http_observer(self) -> HttpObserver: ...
    @property
    def tracing(self) -> Tracer:
        """Its `Tracer.server_span` is the span the HTTP instrumentation made around the edge when
        tracing is on (`smg.observability.tracing_setup`)."""
        ...


class EdgeMiddleware:
    """Reads its collaborators from ``app.state.context``, which the lifespan builds before any request.

    Every request passes the edge once, to one endpoint: a POST on a path of ``direct`` (the
    pass-through routes: `CHAT_ROUTE`, `COMPLETIONS_ROUTE`, `EMBEDDINGS_ROUTE`) to its plain ASGI
    endpoint, which the edge calls itself, past the framework's routing and exception layers (the hot
    path, ADR 0003), and which raises `SmgError` for the edge to render; every other request to the
    framework ``app``. The framework's routes on those paths declare the operations for the OpenAPI
    document and the route table (so other methods on the paths are 405) and never serve.
    """

    def __init__(self, app: ASGIApp, *, direct: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self._direct = direct

    def serves(self, scope: Scope) -> bool:
        """The request is one of the ``direct`` pass-through routes (a POST on one of their paths)."""
        return scope["method"] == "POST" and scope["path"] in self._direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        edge: Edge = scope["app"].state.context
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = headers.get(_REQUEST_ID)
        refused = request_id is not None and not printable(request_id)
        if not request_id or refused:
            request_id = _new_request_id()  # a refused id is neither used nor echoed
        scope.setdefault("state", {})["request_id"] = request_id.decode("ascii")
        outcome: dict[str, Any] = {"status": 500, "error_code": "", "started": False}
        endpoint = self._direct.get(scope["path"]) if scope["method"] == "POST" else None
        span = edge.tracing.server_span()

        async def send_with_id(message: Message) -> None:
            if message["type"] != "http.response.start":
                await send(message)
                return
            outcome["started"] = True
            outcome["status"] = message["status"]
            raw = list(message.get("headers", ()))
            for name, value in raw:
                if name.lower() == _ERROR_CODE:
                    outcome["error_code"] = value.decode("latin-1")
            raw.append((_REQUEST_ID, request_id))
            await send({**message, "headers": raw})
            # After the instrumentation recorded the status (so the edge's error.type stands), and
            # before the last body chunk, with which it ends the span.
            if span.recording:
                route = scope["path"] if endpoint else _route_template(scope)
                _end_server_span(span, scope["method"], route, outcome)

        edge.http_observer.on_start()
        try:
            if refused:
                raise InvalidRequest("x-request-id must be printable ASCII", param="x-request-id")
            await self._admit(edge, scope, receive, send_with_id, headers, endpoint or self.app)
        except SmgError as err:
            if outcome["started"]:
                raise
            await _refusal(err, scope)(scope, receive, send_with_id)
        except Exception:
            if outcome["started"]:
                raise
            # Rendered here rather than by the framework's outermost handler, so the answer
            # carries the request id and the metrics see its code.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await _refusal(SmgError("internal error"), scope)(scope, receive, send_with_id)
        finally:
            route = scope["path"] if endpoint else _route_template(scope)
            edge.http_observer.on_end(
                method=scope["method"],
                path=route,
                status=outcome["status"],
                error_code=outcome["error_code"],
                duration=time.perf_counter() - started,
            )
            if not outcome["started"]:  # no answer went out, so the server span is still open
                _end_server_span(span, scope["method"], route, outcome)

    async def _admit(
        self,
        edge: Edge,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        app: ASGIApp,
    ) -> None:
        plane = plane_of(scope["path"])
        client = scope.get("client")
        found = edge.auth.check(plane, headers, client[0] if client else None)
        if found is not None:  # a stored key's scope; without one the decisions read UNRESTRICTED
            attach(scope, found)
        receive = _limit_body(edge.max_body, headers, receive)
        if plane != DATA:
            await app(scope, receive, send)
            return
        await edge.admission.acquire()
        try:
            await app(scope, receive, send)
        finally:
            edge.admission.release()


def _refusal(err: SmgError, scope: Scope) -> Response:
    """The edge's own error answer; under /ui with the console's headers (`smg.api.console`), which
    the requests the edge refuses never reach."""
    response = error_response(err)
    if is_console_path(scope["path"]):
        response.raw_headers = secured(response.raw_headers)
    return response


def printable(value: bytes) -> bool:
    """The header value is printable ASCII (space to ``~``, and tab): the only values the gateway
    passes on, since anything else would not reach a worker or a client byte for byte."""
    return _UNPRINTABLE.search(value) is None


_ID_BATCH = 256
_ids: list[bytes] = []  # request ids not handed out yet; the event loop's thread only
os.register_at_fork(after_in_child=_ids.clear)  # a forked process never repeats its parent's ids


def _new_request_id() -> bytes:
    """A random UUID4 in hex, as ``uuid.uuid4().hex`` spells it, without building a UUID object. The
    random bytes come from ``os.urandom`` 256 ids at a time: one system call per batch, not per request."""
    if not _ids:
        _ids.extend(_uuid4_hex(os.urandom(16 * _ID_BATCH)))
    return _ids.pop()


def _uuid4_hex(random: bytes) -> list[bytes]:
    ids = []
    for start in range(0, len(random), 16):
        raw = bytearray(random[start : start + 16])
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        ids.append(raw.hex().encode())
    return ids


def _end_server_span(span: ServerSpan, method: str, route: str, outcome: dict[str, Any]) -> None:
    """What the edge knows and the instrumentation does not: the route template (also for the
    pass-through requests, which the framework does not route, and for requests refused before
    routing) and the gateway's error code."""
    if not span.recording:  # tracing off, or a request that is not traced: no attribute work
        return
    span.rename(f"{method} {route}")
    span.set("http.route", route)
    span.set("url.path", route)  # the template, as the metrics label it: raw paths may carry ids
    span.set("http.response.status_code", outcome["status"])
    if outcome["status"] >= 500:
        span.fail(outcome["error_code"] or str(outcome["status"]))


def _limit_body(limit: int, headers: dict[bytes, bytes], receive: Receive) -> Receive:
    """Refuse a declared Content-Length over ``limit`` at once, and count the bytes of any other body."""
    declared = headers.get(b"content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise InvalidRequest("invalid Content-Length header") from None
        if length > limit:
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {limit} bytes")
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        return message

    return limited


def _route_template(scope: Scope) -> str:
    """The matched route's path template; for requests refused before routing, the route they asked for."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    for pattern, template in scope["app"].state.route_templates:
        if pattern.match(scope["path"]):
            return str(template)
    return "unmatched"
