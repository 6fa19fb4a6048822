"""Keys of a running gateway: the admin operations on the `KeyStore`, and the watch that keeps the
edge's `KeyRing` in step with it.

The ring is loaded when the gateway starts (`load`), again after every change made through here, and
whenever `run_watch` (polling the store's version, by default every 0.5 s) sees the store change by
another hand (``smg keys revoke --registry FILE``, another gateway on the same file): a revoked key stops
working within a poll. An expired key stops at its expiry: the ring compares it on each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from smg.errors import SmgError
from smg.keys.record import new_record
from smg.keys.ring import KeyObserver, KeyRing
from smg.keys.secrets import check_name
from smg.keys.store import KeyStore

log = logging.getLogger("smg.keys")
POLL_SECS = 0.5


class Keys:
    """The admin operations answer the wire shapes of ``/keys`` (`smg.keys.record.KeyRecord.view`)."""

    def __init__(self, store: KeyStore, ring: KeyRing, *, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ring = ring
        self._wall = wall
        self._version: int | None = None
        # One reload at a time: a poll's older read must not land after a revocation's newer one.
        self._reloading = asyncio.Lock()

    def load(self) -> None:
        """Read every key into the ring now (blocking: at start-up). Raises KeyStoreError."""
        version = self.store.version()
        self.ring.replace(self.store.list())
        self._version = version

    async def sync(self) -> bool:
        """Reload the ring if the store changed since the last load; whether it did."""
        async with self._reloading:
            version = await asyncio.to_thread(self.store.version)
            if version == self._version:
                return False
            self.ring.replace(await asyncio.to_thread(self.store.list))
            self._version = version
            return True

    async def run_watch(self, interval_secs: float = POLL_SECS) -> None:
        """Poll the store forever; an unusable file is logged and the last keys kept."""
        while True:
            await asyncio.sleep(interval_secs)
            try:
                if await self.sync():
                    log.info("API keys changed; %d stored", len(self.ring))
            except SmgError as exc:
                log.error("API keys: %s", exc.message)

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new key from ``body`` (`smg.keys.record.new_record`): ``{"key": view, "secret": ...}``, the
        only time the secret is shown. Raises InvalidRequest, KeyExists, KeyStoreError."""
        now = self._wall()
        record, secret = new_record(body, now=now)
        await asyncio.to_thread(self.store.add, record)
        await self.sync()
        return {"key": record.view(now), "secret": secret}

    async def list(self) -> list[dict[str, Any]]:
        now = self._wall()
        return [r.view(now) for r in await asyncio.to_thread(self.store.list)]

    async def get(self, name: str) -> dict[str, Any]:
        """Raises KeyNotFound, KeyStoreError."""
        return (await asyncio.to_thread(self.store.get, check_name(name))).view(self._wall())

    async def revoke(self, name: str) -> dict[str, Any]:
        """Revoke ``name`` (at once on this gateway). Raises KeyNotFound, KeyStoreError."""
        now = self._wall()
        record = await asyncio.to_thread(self.store.revoke, check_name(name), at=now)
        await self.sync()
        return record.view(now)


@contextlib.asynccontextmanager
async def watched_keys(store: KeyStore, observer: KeyObserver, *, rpm_share: int = 1) -> AsyncIterator[Keys]:
    """The keys of ``store``, loaded, and watched (`Keys.run_watch`) until the block ends. ``observer``
    hears of rate refusals; ``rpm_share`` is the ring's (`KeyRing`). Raises KeyStoreError when the store
    cannot be read."""
    keys = Keys(store, KeyRing(observer=observer, rpm_share=rpm_share))
    keys.load()
    task = asyncio.create_task(keys.run_watch(), name="smg-key-watch")
    try:
        yield keys
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
