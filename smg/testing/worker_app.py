"""The scripted worker's aiohttp application: handlers, fault application and control plane.

Faults apply to every model request (chat, completions, embeddings), in this order, before the body is
validated: hang, delay_ms, status, fail_every. Every model request (even an invalid one) is counted in
the stats and recorded in ``/_smg/requests`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from smg.testing.worker_faults import Faults, WorkerStats
from smg.testing.worker_render import completion_body, error_body, pieces, stream_events
from smg.testing.worker_script import ChatRequestError, parse_chat_request, plan_reply
from smg.testing.worker_text import completion_events, completion_json, embedding_json, parse_text_request

__all__ = ["WorkerConfig", "build_worker_app", "live_state"]

_JSON = "application/json"
_RECORDED_REQUESTS = 50


@dataclass(slots=True)
class WorkerConfig:
    """What a worker serves: its model names and its (live, shared) faults."""

    models: tuple[str, ...] = ("mock-model",)
    faults: Faults = field(default_factory=Faults)


class _Worker:
    """Handlers plus the mutable state behind them; one per application."""

    def __init__(self, config: WorkerConfig) -> None:
        self.models = frozenset(config.models)
        self.faults = config.faults
        self.stats = WorkerStats()
        self.requests: deque[dict[str, Any]] = deque(maxlen=_RECORDED_REQUESTS)
        self.closing = asyncio.Event()
        self.changed = asyncio.Condition()  # notified when the faults change (a held stream re-reads them)
        self._fail_key: tuple[int, int] | None = None
        self._fail_count = 0
        self._models_body = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "smg-testing"}
                    for m in config.models
                ],
            }
        )

    async def list_models(self, request: web.Request) -> web.Response:
        return web.Response(body=self._models_body, content_type=_JSON)

    async def health(self, request: web.Request) -> web.Response:
        self.stats.health_checks += 1
        status = self.faults.health_status
        return web.Response(
            status=status,
            content_type=_JSON,
            body=b'{"status":"ok"}' if status == 200 else b'{"status":"unhealthy"}',
        )

    async def _admit(self, request: web.Request, seq: int) -> tuple[Any, int] | web.Response:
        """Record a model request (counted by the caller as number ``seq``) and apply the faults; the
        parsed body (`_INVALID` when it is not JSON) and ``seq``, or the injected fault's answer."""
        body: Any
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = _INVALID
        self.requests.append(
            {
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": None if body is _INVALID else body,
            }
        )
        fault = await self._injected_fault()
        if fault is not None:
            return fault
        if body is _INVALID:
            return _error(400, "request body is not valid JSON", code="invalid_json")
        return body, seq

    def _unknown(self, model: str) -> web.Response | None:
        if model in self.models:
            return None
        return _error(404, f"model {model!r} does not exist", param="model", code="model_not_found")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.stats.chat_requests += 1
        admitted = await self._admit(request, self.stats.chat_requests)
        if isinstance(admitted, web.Response):
            return admitted
        body, seq = admitted
        try:
            chat = parse_chat_request(body)
        except ChatRequestError as exc:
            return _error(exc.status, exc.message, param=exc.param, code=exc.code)
        if (unknown := self._unknown(chat.model)) is not None:
            return unknown
        reply = plan_reply(chat)
        completion_id, created = f"chatcmpl-mock-{seq}", int(time.time())
        if not chat.stream:
            return web.Response(
                body=completion_body(reply, completion_id=completion_id, created=created, model=chat.model),
                content_type=_JSON,
            )
        events = stream_events(
            reply,
            completion_id=completion_id,
            created=created,
            model=chat.model,
            include_usage=chat.include_usage,
        )
        return await self._stream(request, events)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.stats.completions_requests += 1
        admitted = await self._admit(request, self.stats.completions_requests)
        if isinstance(admitted, web.Response):
            return admitted
        body, seq = admitted
        try:
            text = parse_text_request(body, field="prompt")
        except ChatRequestError as exc:
            return _error(exc.status, exc.message, param=exc.param, code=exc.code)
        if (unknown := self._unknown(text.model)) is not None:
            return unknown
        completion_id, created = f"cmpl-mock-{seq}", int(time.time())
        if not text.stream:
            return web.Response(
                body=completion_json(text, completion_id=completion_id, created=created), content_type=_JSON
            )
        return await self._stream(
            request, completion_events(text, completion_id=completion_id, created=created)
        )

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        self.stats.embeddings_requests += 1
        admitted = await self._admit(request, self.stats.embeddings_requests)
        if isinstance(admitted, web.Response):
            return admitted
        try:
            text = parse_text_request(admitted[0], field="input")
        except ChatRequestError as exc:
            return _error(exc.status, exc.message, param=exc.param, code=exc.code)
        if (unknown := self._unknown(text.model)) is not None:
            return unknown
        return web.Response(body=embedding_json(text), content_type=_JSON)

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.faults.to_dict())

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            changes = orjson.loads(await request.read())
            if not isinstance(changes, dict):
                raise ValueError("faults must be a JSON object")
            self.faults.update(changes)
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError too
            return _error(400, str(exc), code="invalid_value")
        async with self.changed:
            self.changed.notify_all()
        return _json(self.faults.to_dict())

    async def get_stats(self, request: web.Request) -> web.Response:
        return _json(self.stats.to_dict())

    async def get_requests(self, request: web.Request) -> web.Response:
        return _json(list(self.requests))

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return _json({"cleared": True})

    async def on_shutdown(self, app: web.Application) -> None:
        self.closing.set()
        async with self.changed:
            self.changed.notify_all()

    async def _injected_fault(self) -> web.Response | None:
        faults = self.faults
        if faults.hang:
            await self.closing.wait()
            return _error(503, "worker is shutting down", code="injected_fault")
        if faults.delay_ms:
            await self._pause(faults.delay_ms)
        if faults.status is not None:
            return _error(faults.status, "injected fault", code="injected_fault")
        if faults.fail_every > 0:
            key = (faults.fail_every, faults.epoch)
            if key != self._fail_key:
                self._fail_key, self._fail_count = key, 0
            self._fail_count += 1
            if self._fail_count % faults.fail_every == 0:
                return _error(faults.fail_status, "injected periodic fault", code="injected_fault")
        return None

    async def _stream(self, request: web.Request, events: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        drop, delay_ms = self.faults.drop_after_chunks, self.faults.chunk_delay_ms
        hold = self.faults.hold_after_chunks
        if drop is None and hold is None and not delay_ms:
            for piece in pieces(events):
                await self._write(response, piece)
            return response
        for sent, event in enumerate(events):
            if sent == drop:
                # close() (not abort()) so the chunks already written still reach the client.
                if request.transport is not None:
                    request.transport.close()
                return response
            if sent and delay_ms:
                await self._pause(delay_ms)
            if sent == hold:
                async with self.changed:
                    await self.changed.wait_for(
                        lambda: self.faults.hold_after_chunks is None or self.closing.is_set()
                    )
            await self._write(response, event)
        return response

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        """Write one piece of a stream, counted in the stats. The write suspends only while the socket's
        buffer is full (aiohttp drains past 64 KiB), so a control-plane request sees
        ``stream_writes_blocked`` above zero only while a peer is not reading."""
        stats = self.stats
        stats.stream_writes_blocked += 1
        try:
            await response.write(data)
        finally:
            stats.stream_writes_blocked -= 1
        stats.stream_bytes_sent += len(data)

    async def _pause(self, milliseconds: int) -> None:
        """Sleep, but wake early when the worker shuts down."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(milliseconds / 1000):
                await self.closing.wait()


_INVALID: Any = object()
_WORKER = web.AppKey("smg_testing_worker", _Worker)


def _json(payload: Any) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type=_JSON)


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> web.Response:
    return web.Response(
        status=status, content_type=_JSON, body=error_body(message, status=status, param=param, code=code)
    )


def build_worker_app(config: WorkerConfig) -> web.Application:
    """Build the worker application; it uses `config.faults` by reference (mutations apply live)."""
    worker = _Worker(config)
    app = web.Application()
    app[_WORKER] = worker
    app.on_shutdown.append(worker.on_shutdown)
    router = app.router
    router.add_get("/v1/models", worker.list_models)
    router.add_get("/health", worker.health)
    router.add_post("/v1/chat/completions", worker.chat)
    router.add_post("/v1/completions", worker.completions)
    router.add_post("/v1/embeddings", worker.embeddings)
    router.add_get("/_smg/faults", worker.get_faults)
    router.add_post("/_smg/faults", worker.set_faults)
    router.add_get("/_smg/stats", worker.get_stats)
    router.add_get("/_smg/requests", worker.get_requests)
    router.add_delete("/_smg/requests", worker.clear_requests)
    return app


def live_state(app: web.Application) -> tuple[Faults, WorkerStats]:
    """Return the live faults and stats of an app built by `build_worker_app`.

    Raises:
        KeyError: `app` was not built by `build_worker_app`.
    """
    worker = app[_WORKER]
    return worker.faults, worker.stats
