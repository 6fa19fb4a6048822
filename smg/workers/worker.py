"""A worker (one upstream OpenAI-compatible server) and the registry of all of them."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from smg.errors import ModelNotFound, NoAvailableWorkers, WorkerExists, WorkerNotFound
from smg.workers.breaker import BreakerState, CircuitBreaker


def worker_id(url: str) -> str:
    """Stable short id of a worker URL, used in admin paths (``/workers/{id}``)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


RECENT_ERRORS = 5
"""How many failed attempts a worker keeps for the admin view."""


@dataclass(eq=False)
class Worker:
    """Live state of one worker. ``api_key`` is the upstream credential; it is never shown or logged."""

    url: str
    breaker: CircuitBreaker
    api_key: str | None = field(default=None, repr=False)
    models: frozenset[str] | None = None  # None: not discovered yet
    healthy: bool = True
    in_flight: int = 0
    # the last failed attempts, oldest first: (unix time, "Class: message", upstream status or None)
    errors: deque[tuple[float, str, int | None]] = field(
        default_factory=lambda: deque(maxlen=RECENT_ERRORS), repr=False
    )

    @property
    def id(self) -> str:
        return worker_id(self.url)

    @property
    def routable(self) -> bool:
        return self.healthy and self.breaker.allows()

    def serves(self, model: str) -> bool:
        return self.models is not None and model in self.models

    def note_error(self, error: BaseException | None, status: int | None) -> None:
        """Keep a failed attempt for the admin view (only the last `RECENT_ERRORS`)."""
        text = f"{type(error).__name__}: {error}" if error is not None else f"worker answered HTTP {status}"
        self.errors.append((time.time(), text, status))

    def describe(self) -> dict[str, object]:
        """Public view for the admin API: no credentials."""
        return {
            "id": self.id,
            "url": self.url,
            "models": sorted(self.models) if self.models is not None else None,
            "healthy": self.healthy,
            "circuit_breaker": self.breaker.state.label,
            "breaker_changed_at": self.breaker.changed_at,
            "in_flight": self.in_flight,
            "has_api_key": self.api_key is not None,
            "recent_errors": [
                {"at": at, "error": text, "status": status} for at, text, status in reversed(self.errors)
            ],
        }


class WorkerRegistry:
    """The set of workers, keyed by URL. Not thread-safe: used from the event loop only."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def __iter__(self) -> Iterator[Worker]:
        return iter(list(self._workers.values()))

    def __len__(self) -> int:
        return len(self._workers)

    def add(self, worker: Worker) -> None:
        """Raises WorkerExists when the URL is already registered."""
        if worker.url in self._workers:
            raise WorkerExists(f"worker {worker.url} is already registered")
        self._workers[worker.url] = worker

    def remove(self, key: str) -> Worker:
        """Remove by URL or id. Raises WorkerNotFound."""
        worker = self.get(key)
        del self._workers[worker.url]
        return worker

    def get(self, key: str) -> Worker:
        """Look up by URL or id. Raises WorkerNotFound."""
        found = self._workers.get(key.rstrip("/"))
        if found is None:
            found = next((w for w in self._workers.values() if w.id == key), None)
        if found is None:
            raise WorkerNotFound(f"no worker {key!r}")
        return found

    def __contains__(self, url: str) -> bool:
        return url in self._workers

    def candidates(self, model: str) -> list[Worker]:
        """Routable workers serving ``model``.

        Raises ModelNotFound when no worker (routable or not) is known to serve it and every worker's
        models are known; NoAvailableWorkers when some could but none is routable now.
        """
        serving = [w for w in self._workers.values() if w.serves(model)]
        routable = [w for w in serving if w.routable]
        if routable:
            return routable
        if serving or any(w.models is None for w in self._workers.values()) or not self._workers:
            raise NoAvailableWorkers(f"no healthy worker is available for model '{model}'")
        raise ModelNotFound(model)

    def models(self) -> list[str]:
        """Models served by at least one healthy worker, sorted."""
        names: set[str] = set()
        for w in self._workers.values():
            if w.healthy and w.models:
                names |= w.models
        return sorted(names)

    def routable_count(self) -> int:
        return sum(1 for w in self._workers.values() if w.routable)

    def breaker_states(self) -> dict[str, BreakerState]:
        return {w.url: w.breaker.state for w in self._workers.values()}
