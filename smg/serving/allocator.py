"""The C allocator of a long-running gateway: memory freed after a burst goes back to the system.

glibc serves a request of at least its mmap threshold (128 KiB at start) with a mapping of its own, given
back when freed, but it raises that threshold to the size of each such block freed, up to 32 MiB. A
gateway relaying many streams at once frees many blocks of 128-512 KiB (worker reads, relayed chunks,
request bodies); from then on blocks of that size come from the heap. And a free block in the middle of
the heap is kept: only the heap's top is given back. So the RSS stayed at its peak once a burst of slow
streams was over (docs/reliability.md). Two settings fix that:

- a fixed mmap threshold of 64 KiB (`MMAP_THRESHOLD`): larger blocks have their own mapping, given back
  as soon as they are freed;
- `malloc_trim` every `TRIM_INTERVAL_SECS` seconds while the RSS is `TRIM_SLACK` or more above the lowest
  RSS seen: the free pages inside the heap go back too. One trim takes milliseconds on a heap of
  hundreds of MiB, less than one when there is nothing to give back.

Both are skipped on a C library other than glibc, and when the environment sets glibc's mmap or trim
threshold itself (`operator_tuned`): that choice stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping

log = logging.getLogger("smg")

MMAP_THRESHOLD = 64 * 1024
TRIM_INTERVAL_SECS = 10.0
TRIM_SLACK = 8 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc's malloc.h)
_PAGE = os.sysconf("SC_PAGE_SIZE")


_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")


def operator_tuned(env: Mapping[str, str]) -> bool:
    """True when ``env`` sets glibc's mmap or trim threshold (``MALLOC_MMAP_THRESHOLD_``, ...,
    ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...``)."""
    tunables = env.get("GLIBC_TUNABLES", "")
    return any(name in env for name in _ENV) or any(name in tunables for name in _TUNABLES)


def _glibc() -> ctypes.CDLL | None:
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        return ctypes.CDLL(None)
    except (ValueError, OSError):  # the name is unknown to this C library
        return None


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Trimmer:
    """Gives the heap's free pages back (``malloc_trim``) while the RSS is ``slack`` bytes or more above
    the lowest RSS seen. Right after a burst that is what was freed but kept; while memory is in use it
    costs a trim that gives little back (milliseconds, once per check)."""

    def __init__(
        self, trim: Callable[[], object], *, rss: Callable[[], int] = rss_bytes, slack: int = TRIM_SLACK
    ):
        self._trim = trim
        self._rss = rss
        self._slack = slack
        self._floor = rss()

    def check(self) -> bool:
        """Trim if the RSS is the slack or more above the lowest seen; True when it trimmed."""
        now = self._rss()
        self._floor = min(self._floor, now)
        if now - self._floor < self._slack:
            return False
        self._trim()
        after = self._rss()
        self._floor = min(self._floor, after)
        log.debug("gave free heap pages back: RSS %d -> %d MiB", now >> 20, after >> 20)
        return True


async def _trim_every(trimmer: Trimmer, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        trimmer.check()


@contextlib.asynccontextmanager
async def returning_freed_memory(
    env: Mapping[str, str] = os.environ, *, interval: float = TRIM_INTERVAL_SECS
) -> AsyncIterator[bool]:
    """While open, the process gives freed memory back (see the module's text). Yields True when the
    settings apply (glibc, and the environment does not set the thresholds itself)."""
    libc = None if operator_tuned(env) else _glibc()
    if libc is None:
        yield False
        return
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    task = asyncio.create_task(_trim_every(Trimmer(lambda: libc.malloc_trim(0)), interval))
    try:
        yield True
    finally:
        task.cancel()
