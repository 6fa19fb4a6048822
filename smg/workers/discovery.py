"""Worker discovery from a watched file (``--worker-file``): a YAML or JSON list of workers.

Shape (JSON is YAML, so ``["http://a:8000"]`` works too)::

    - http://127.0.0.1:8000                        # a URL, no upstream key
    - url: http://127.0.0.1:8001
      api_key: sk-upstream                         # optional, never logged or shown

The file is applied whole when its content changes: listed workers that are not registered are added,
workers this file added and no longer lists are removed. Workers registered by ``--worker-urls`` or the
admin API are never removed by the file, and a URL they already registered is left to them. A file that
cannot be read or parsed logs one error and changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from smg.errors import WorkerExists, WorkerNotFound
from smg.urls import WorkerEntryError, parse_worker_entry
from smg.workers.pool import WorkerPool
from smg.workers.retry import every
from smg.workers.worker import Worker
from smg.yaml_lines import key_line

log = logging.getLogger("smg.workers.discovery")
SOURCE = "file"
POLL_SECS = 2.0  # fixed; documented with --worker-file


@dataclass(frozen=True)
class _Entry:
    url: str
    api_key: str | None = field(default=None, repr=False)


class _Malformed(ValueError):
    """The file's content is not a list of workers; the message never contains an API key."""


def _entry(item: object, where: str, text: str, index: int) -> _Entry:
    try:
        url, api_key = parse_worker_entry(item)
    except WorkerEntryError as exc:
        line = key_line(text, [index, exc.key]) if exc.key is not None else None
        at = f"line {line}: " if line is not None else ""
        raise _Malformed(f"{at}{where}: {exc}") from None
    return _Entry(url, api_key)


def _parse(text: str) -> dict[str, _Entry]:
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position: the YAML error's excerpt of the line could contain an API key.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _Malformed(f"not valid YAML or JSON{at}") from None
    if isinstance(doc, dict) and doc:  # e.g. "workers: [...]": name the key that is not expected
        keys = ", ".join(repr(str(k)) for k in doc)
        raise _Malformed(
            f"line {key_line(text, [str(next(iter(doc)))]) or 1}: unknown key(s) {keys}: "
            "expected a list of workers"
        )
    if not isinstance(doc, list):  # an empty file too: it may be caught half-written
        raise _Malformed("expected a list of workers")
    entries: dict[str, _Entry] = {}
    for i, item in enumerate(doc):
        entry = _entry(item, f"[{i}]", text, i)
        if entry.url in entries:
            raise _Malformed(f"[{i}]: duplicate URL {entry.url!r}")
        entries[entry.url] = entry
    return entries


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class WorkerFileWatcher:
    """Keeps the pool's file-sourced workers equal to the workers listed in ``path``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        pool: WorkerPool,
        *,
        interval_secs: float = POLL_SECS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = os.fspath(path)
        self._pool = pool
        self._interval = interval_secs
        self._sleep = sleep
        # A file that cannot be read or parsed is retried at the next poll, under this tenacity policy.
        self._poller = every(interval_secs, sleep=sleep, job=f"worker file {self.path}")
        self._lock = asyncio.Lock()
        self._digest: bytes | None = None  # content last looked at, applied or rejected
        self._last_error: str | None = None
        self._owned: dict[str, Worker] = {}  # url -> the worker this file registered

    async def sync_once(self) -> bool:
        """Apply the file if its content changed since the last call; True when the pool changed.
        Never raises for a missing, unreadable or malformed file: it logs one error and changes nothing."""
        async with self._lock:
            try:
                raw = await asyncio.to_thread(_read, self.path)
                digest = hashlib.sha256(raw).digest()
                if digest == self._digest:
                    return False
                self._digest = digest
                wanted = _parse(raw.decode("utf-8"))
            except OSError as exc:
                self._digest = None  # re-read once it is readable again, even with the same content
                self._report(f"cannot read ({exc.strerror})")
                return False
            except UnicodeDecodeError:
                self._report("not UTF-8 text")
                return False
            except _Malformed as exc:
                self._report(str(exc))
                return False
            self._last_error = None
            return await self._apply(wanted)

    async def run(self) -> None:
        """Poll forever, every ``interval_secs`` (the first time one interval after the start)."""
        await self._sleep(self._interval)
        await self._poller.copy()(self.sync_once)

    def _report(self, message: str) -> None:
        if message != self._last_error:
            log.error("worker file %s: %s; workers unchanged", self.path, message)
        self._last_error = message

    def _still_owned(self, url: str) -> Worker | None:
        worker = self._owned.get(url)
        if worker is None or url not in self._pool.registry or self._pool.registry.get(url) is not worker:
            self._owned.pop(url, None)  # removed (or replaced) through the admin API meanwhile
            return None
        return worker

    async def _apply(self, wanted: dict[str, _Entry]) -> bool:
        changed = False
        for url in list(self._owned):
            worker = self._still_owned(url)
            entry = wanted.get(url)
            if worker is not None and (entry is None or entry.api_key != worker.api_key):
                del self._owned[url]
                try:
                    await self._pool.remove(url, source=SOURCE)
                    changed = True
                except WorkerNotFound:
                    pass
        new = [e for url, e in wanted.items() if url not in self._owned and url not in self._pool.registry]
        added = await asyncio.gather(*(self._add(e) for e in new))
        return changed or any(added)

    async def _add(self, entry: _Entry) -> bool:
        try:
            worker = await self._pool.add(entry.url, api_key=entry.api_key, source=SOURCE)
        except WorkerExists:  # registered through the admin API while we were adding
            return False
        self._owned[entry.url] = worker
        return True
