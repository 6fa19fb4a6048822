"""Cancelling a background response from any serving process or replica, through the shared store.

A run lives in the process that started it. A cancel that reaches another process marks the run in the
store (`ResponseStore.request_cancel`) and waits, at most `WAIT_SECS`, for the stored object to become
final; the process running it reads the marks of its runs every `POLL_SECS` (`watch_cancels`, only
while it has runs: no cost per request) and cancels them as a local cancel does, so the run ends
``cancelled`` (or as it had ended, when it finished first). A run whose process stopped is stored
``failed`` by the next gateway that starts (`BackgroundRuns.recover`), not by a cancel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from smg.errors import ServiceUnavailable, SmgError
from smg.responses.store import ResponseStore

log = logging.getLogger("smg.responses")

POLL_SECS = 0.5  # how often a process with runs reads their cancel marks
WAIT_SECS = 10.0  # how long a cancel reaching another process waits for the run to end
_READ_SECS = 0.1
RUNNING = ("queued", "in_progress")


async def cancel_elsewhere(
    store: ResponseStore, response_id: str, stored: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Mark ``response_id`` (running in another process) to be cancelled and wait until its stored
    object is final; that object (``cancelled``, or how it ended when it ended first). Raises
    ServiceUnavailable when the run has not ended within `WAIT_SECS` (the mark stays: it is still
    cancelled once its process reads it), ResponseNotFound, ResponseStoreError."""
    if not await asyncio.to_thread(store.request_cancel, response_id):
        return await stored()  # no run of it goes on: it ended meanwhile
    try:
        async with asyncio.timeout(WAIT_SECS):
            while True:
                response = await stored()
                if response["status"] not in RUNNING:
                    return response
                await asyncio.sleep(_READ_SECS)
    except TimeoutError:
        raise ServiceUnavailable(
            f"Response '{response_id}' runs in another serving process or replica, which has not "
            f"cancelled it within {WAIT_SECS:g} s; the cancel is recorded and takes effect when it does."
        ) from None


async def watch_cancels(
    store: ResponseStore, running: Callable[[], list[str]], cancel: Callable[[str], None]
) -> None:
    """While ``running()`` names runs: every `POLL_SECS`, ``cancel`` those of them marked cancelled
    in the store. Returns once no run is left; a store that fails is read again at the next poll."""
    while running():
        await asyncio.sleep(POLL_SECS)
        ids = running()
        if not ids:
            return
        try:
            marked = await asyncio.to_thread(store.cancel_requests, ids)
        except SmgError as exc:
            log.warning("cancel marks of background responses could not be read: %s", exc)
            continue
        for response_id in marked:
            cancel(response_id)
