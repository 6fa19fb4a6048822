"""``POST /v1/responses`` with ``stream: true``: the loop streamed round by round, as OpenAI's events.

As the chat stream of a tool loop, the request is prepared (`Preparation`: history, tools, approved
calls) and the first model round's stream is opened before anything is sent, so an error until then
(400, 404 of ``previous_response_id`` or the model, no worker) is an ordinary JSON error with its
status. Then the events follow as the loop runs (`smg.responses.live`), and last:

- the loop ended: the response is stored (with ``store``), then ``response.completed`` (or
  ``response.incomplete``) carries it whole;
- the stream broke (the worker died or sent garbage mid-stream, no worker for a later round, the store
  failed, an internal error): the response is stored with ``status: "failed"``, its ``error``
  (``code: "server_error"``, the message) and the output items finished before the break, then
  ``response.failed`` carries it and OpenAI's ``error`` event (the gateway's error ``code``,
  ``message``, ``param``) ends the stream;
- the client left: the loop is cancelled where it was (a model stream, a tool call), nothing is stored,
  and the route is recorded once as ``client_disconnected``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from smg.errors import SmgError
from smg.keys.scope import KeyScope
from smg.mcp.types import McpRuntime
from smg.responses.items import new_id
from smg.responses.live import LiveResponse
from smg.responses.output import response_object
from smg.responses.prepare import Preparation
from smg.responses.remote_servers import loop_on
from smg.responses.request import ResponsesRequest
from smg.routing.budgets import CallRecord
from smg.routing.loop import ToolLoop
from smg.routing.recent_loops import RESPONSES
from smg.routing.recorder import RouteRecorder, RouterObserver, RouteStream
from smg.routing.stream_loop import StreamRun
from smg.spans import Tracer

log = logging.getLogger("smg.responses")


class LiveStreams:
    """Opens streamed responses: the loop's model rounds are read from the workers as they are
    written (`ToolLoop.open_stream`), with the Responses events as the client stream."""

    def __init__(
        self,
        loop: ToolLoop,
        prepare: Preparation,
        *,
        observer: RouterObserver,
        tracer: Tracer,
        policy: str,
        clock: Callable[[], float],
    ) -> None:
        self._loop = loop
        self._prepare = prepare
        self._observer = observer
        self._tracer = tracer
        self._policy = policy
        self._clock = clock

    async def open(
        self, request: ResponsesRequest, *, headers: dict[str, str], scope: KeyScope, runtime: McpRuntime
    ) -> RouteStream:
        """Prepare ``request`` (its tools on ``runtime``, within the key ``scope``) and open its first
        model round; the client's event stream, to be read while ``runtime`` stays open. Raises what
        `Preparation` raises, and NoAvailableWorkers, ModelNotFound, UpstreamError (the first round)."""
        created_at = int(time.time())
        route = RouteRecorder(
            self._observer,
            self._tracer,
            request.model,
            streaming=True,
            policy=self._policy,
            clock=self._clock,
        )
        with route:
            ready = await self._prepare(request, headers=headers, scope=scope, runtime=runtime)
            live = LiveResponse(
                request,
                ready,
                response_id=new_id("resp"),
                created_at=created_at,
                report=route.generation,
                clock=route.clock,
            )
            route.stage("tool_loop")  # until the client stream ends
            self._loop.keep_recent(
                route.generation, route.span, endpoint=RESPONSES, headers=headers, caller=scope.name
            )
            run = await loop_on(self._loop, runtime).open_stream(
                ready.chat,
                ready.held,
                report=route.generation,
                route=route.span,
                clock=route.clock,
                budgets=ready.budgets,
                writer=live,
            )
        events = self._events(request, run, live, ready.records, route)
        return RouteStream(events, route, run.release)

    async def _events(
        self,
        request: ResponsesRequest,
        run: StreamRun,
        live: LiveResponse,
        records: list[CallRecord],
        route: RouteRecorder,
    ) -> AsyncGenerator[bytes, None]:
        """The client's bytes; the route ends with them (a client that leaves ends it as
        ``client_disconnected``: `RouteRecorder.failed`)."""
        try:
            failure: SmgError | None = None
            try:
                yield live.opening()
                async with aclosing(run.events()) as rounds:
                    async for piece in rounds:
                        if piece:  # a step that made no event (a chunk without text)
                            yield piece
                failure = live.error  # the loop reported it in ``route.generation`` already
                if failure is None:
                    yield await self._completed(request, live, records)
            except Exception as exc:  # a failure of its own (the store, a bug): the client still gets an end
                if not isinstance(exc, SmgError):
                    log.exception("a streamed response failed after its first byte")
                route.failed(exc)
                failure = exc if isinstance(exc, SmgError) else SmgError("internal error")
            if failure is not None:
                yield await self._failed(request, live, failure)
        except BaseException as exc:
            route.failed(exc)
            raise
        finally:
            route.finish()

    async def _completed(
        self, request: ResponsesRequest, live: LiveResponse, records: list[CallRecord]
    ) -> bytes:
        """Store the finished response; its terminal event. Raises ResponseStoreError."""
        result = live.result
        assert result is not None, "the loop ended without a result or an error"
        result.ledger.records[:0] = records
        response = response_object(
            request, result, live.output, response_id=live.response_id, created_at=live.created_at
        )
        await self._prepare.keep(request, response)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        live.events.event(kind, response=response)
        return live.events.take()

    async def _failed(self, request: ResponsesRequest, live: LiveResponse, exc: SmgError) -> bytes:
        """Store the response as failed (best effort); the events made before the failure that were not
        sent yet, ``response.failed`` and the ``error`` event."""
        response = live.shell(
            status="failed", error={"code": "server_error", "message": exc.message}, output=live.output
        )
        try:
            await self._prepare.keep(request, response, count=False)
        except SmgError as store_failure:
            log.warning("a failed streamed response could not be stored: %s", store_failure.message)
        live.events.event("response.failed", response=response)
        live.events.error(exc)
        return live.events.take()
