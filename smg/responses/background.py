"""Background responses (``background: true``): run in the gateway after their create call answered.

`BackgroundRuns.start` stores the response ``queued`` (with a mark that it runs, `ResponseStore.begin`)
and starts a task that runs it as a foreground request runs (`Respond`: the same loop, the same metrics
under ``endpoint="responses"``), then stores the final object, ``completed`` or ``incomplete``, or
``failed`` with an error when the run raised. While it runs, `get` gives the live object (``queued``,
then ``in_progress``); after, the store has it.

`cancel` cancels the task: the worker call or MCP calls it awaits are cancelled with it (the MCP SDK
tells the server), nothing of the run continues, and the response is stored ``cancelled``; cancelling it
again answers it again. A finished background response, or one not created with ``background``, is a 400.
A cancel for a run of another serving process or replica goes through the store
(`smg.responses.cancel_elsewhere`): the process running it cancels it within about a second.

At most ``limit`` runs at a time (``--responses-max-background``); past it `start` raises
`BackgroundLimitReached` (429). Runs hold no admission permit: their create call's permit ends with its
answer, and this bound is theirs. `aclose` (gateway shutdown) cancels the runs still going and stores
them ``failed`` (the client did not cancel them); `recover` (gateway start) stores ``failed`` what a
stopped gateway left running, since nothing runs it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from smg.errors import AdmissionQueueFull, InvalidRequest, ResponseNotFound, ServiceUnavailable, SmgError
from smg.responses.cancel_elsewhere import RUNNING, cancel_elsewhere, watch_cancels
from smg.responses.items import new_id
from smg.responses.output import pending_object
from smg.responses.request import ResponsesRequest
from smg.responses.store import ResponseStore, StoredResponse

log = logging.getLogger("smg.responses")

# Run the request to its final response object, as the pending object given (its id, its time), unstored.
Respond = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
STOPPED = "the gateway stopped before this background response finished; nothing runs it any more"
SHUT_DOWN = "the gateway shut down before this background response finished"
_CLOSE_TIMEOUT_SECS = 30.0


class BackgroundLimitReached(AdmissionQueueFull):
    """429 ``background_limit_reached``: ``--responses-max-background`` runs are going (+ Retry-After)."""

    code = "background_limit_reached"


def failed(response: dict[str, Any], message: str, code: str = "internal_error") -> dict[str, Any]:
    """``response`` ended ``failed``: OpenAI's error object (its code ``server_error``: the codes its
    types accept describe the model's failures, not a gateway's), the gateway's own code in ``smg``."""
    return response | {
        "status": "failed",
        "error": {"code": "server_error", "message": message},
        "smg": {"error_code": code},
    }


def stopped(response: dict[str, Any]) -> dict[str, Any]:
    """What a gateway stores at start for a background response a stopped gateway left running."""
    return failed(response, STOPPED, "gateway_stopped")


@dataclass(eq=False)
class _Run:
    respond: Respond
    stored: StoredResponse  # as begun (queued)
    response: dict[str, Any]  # the live object
    task: asyncio.Task[None] | None = None
    final: dict[str, Any] | None = None  # set once the run ended, before it is stored
    started: asyncio.Event = field(default_factory=asyncio.Event)


class BackgroundRuns:
    """The background responses this gateway runs, at most ``limit`` at a time."""

    def __init__(self, store: ResponseStore, *, limit: int) -> None:
        self._store = store
        self._limit = limit
        self._runs: dict[str, _Run] = {}
        self._closing = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        """Runs not finished yet (their final object not stored yet)."""
        return len(self._runs)

    async def recover(self) -> list[str]:
        """Store ``failed`` every background response a stopped gateway left running; their ids.
        Raises ResponseStoreError."""
        ids = await asyncio.to_thread(self._store.fail_unfinished, stopped)
        if ids:
            log.warning(
                "%d background response(s) left unfinished by a stopped gateway stored failed", len(ids)
            )
        return ids

    async def start(self, request: ResponsesRequest, respond: Respond) -> dict[str, Any]:
        """Store ``request``'s ``queued`` object and start ``respond``, which runs it to its final
        object; the ``queued`` object. Raises BackgroundLimitReached, ServiceUnavailable (shutting
        down), ResponseStoreError."""
        if self._closing:
            raise ServiceUnavailable("the gateway is shutting down")
        if len(self._runs) >= self._limit:
            raise BackgroundLimitReached(
                f"{self._limit} background responses are running; retry later", retry_after_secs=1
            )
        pending = pending_object(request, response_id=new_id("resp"), created_at=int(time.time()))
        stored = StoredResponse(pending["id"], pending, request.input, request.previous_response_id)
        run = _Run(respond, stored, pending)
        self._runs[stored.id] = run  # before any await: a read meanwhile sees it live
        # Shielded: once begun, the run starts even if this create call's client leaves meanwhile.
        await asyncio.shield(self._begin(run))
        return pending

    async def _begin(self, run: _Run) -> None:
        try:
            await asyncio.to_thread(self._store.begin, run.stored)
        except BaseException:
            del self._runs[run.stored.id]
            run.started.set()
            raise
        run.task = asyncio.create_task(self._run(run), name=f"smg-background-{run.stored.id}")
        run.started.set()
        if self._watch is None or self._watch.done():
            watch = watch_cancels(self._store, self._going, self._cancel_here)
            self._watch = asyncio.create_task(watch, name="smg-background-cancels")

    def _going(self) -> list[str]:
        return [rid for rid, run in self._runs.items() if run.task is not None and run.final is None]

    def _cancel_here(self, response_id: str) -> None:
        run = self._runs.get(response_id)
        if run is not None and run.task is not None and run.final is None:
            run.task.cancel()

    async def _run(self, run: _Run) -> None:
        rid = run.stored.id
        run.response = run.response | {"status": "in_progress"}
        try:
            try:
                final = await run.respond(run.stored.response)
            except asyncio.CancelledError:
                # Ours: `cancel` or `aclose`; the task ends here, with the outcome stored.
                if self._closing:
                    final = failed(run.response, SHUT_DOWN, "gateway_shutdown")
                else:
                    final = run.response | {"status": "cancelled"}
            except SmgError as exc:
                final = failed(run.response, exc.message, exc.code)
            except Exception:
                log.exception("background response %s failed", rid)
                final = failed(run.response, "the gateway failed while running this response")
            run.final = final
            try:
                await asyncio.to_thread(self._store.put, StoredResponse(rid, final, *_rest(run.stored)))
            except SmgError as exc:
                log.error("background response %s could not be stored %s: %s", rid, final["status"], exc)
        finally:
            self._runs.pop(rid, None)

    def get(self, response_id: str) -> dict[str, Any] | None:
        """The live object of a run of this gateway (its final one once it ended), else None."""
        run = self._runs.get(response_id)
        if run is None:
            return None
        return run.final or run.response

    def require_ended(self, previous_id: str | None) -> None:
        """Raises InvalidRequest (``previous_response_id``) when ``previous_id`` is a background response
        still running here: a continuation reads its output, which does not exist yet."""
        if previous_id is not None and self.get(previous_id) is not None:
            raise InvalidRequest(
                f"Response '{previous_id}' is still running: continue it once it has ended",
                param="previous_response_id",
            )

    async def cancel(
        self, response_id: str, stored: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Cancel a running background response, here or in another process (`cancel_elsewhere`); the
        ``cancelled`` object (also when it was cancelled before). ``stored`` reads it from the store when
        it does not run here. Raises ResponseNotFound, InvalidRequest (not a background response, or it
        finished), ServiceUnavailable (another process did not cancel it in time)."""
        run = self._runs.get(response_id)
        if run is not None:
            async with asyncio.timeout(_CLOSE_TIMEOUT_SECS):
                await run.started.wait()
                task = run.task
                if task is None:  # it never started: its create call failed
                    raise ResponseNotFound(response_id)
                if run.final is None:
                    task.cancel()
                await asyncio.wait({task})
            response = run.final or run.response
        else:
            response = await stored()
        if response.get("background") is not True:
            raise InvalidRequest(
                f"Response '{response_id}' cannot be cancelled: only responses created with "
                "'background': true can be cancelled."
            )
        if run is None and response["status"] in RUNNING:  # it runs in another process or replica
            response = await cancel_elsewhere(self._store, response_id, stored)
        if response["status"] != "cancelled":
            raise InvalidRequest(
                f"Response '{response_id}' cannot be cancelled: it is already {response['status']}."
            )
        return response

    async def forget(self, response_id: str) -> None:
        """Before deleting ``response_id``: when it runs here, cancel it (nothing of it continues, and it
        is not stored again)."""
        run = self._runs.get(response_id)
        if run is not None:
            with contextlib.suppress(InvalidRequest, ResponseNotFound):  # it ended meanwhile
                await self.cancel(response_id, _never)

    async def aclose(self) -> None:
        """Cancel every run still going; each is stored ``failed`` (bounded wait)."""
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.wait({self._watch})
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        for run in self._runs.values():
            if run.task is not None and run.final is None:
                run.task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT_SECS)


def _rest(stored: StoredResponse) -> tuple[list[dict[str, Any]], str | None]:
    return stored.input_items, stored.previous_id


async def _never() -> dict[str, Any]:
    raise ResponseNotFound("")
