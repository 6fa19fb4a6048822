"""The telemetry guard (`guarded`) and the cache of labelled children (`Children`) the observers share."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("smg.observability")
F = TypeVar("F", bound=Callable[..., None])


def guarded(fn: F) -> F:
    """Run a telemetry hook; log and swallow any failure (the telemetry guard)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # the telemetry guard: a metrics bug must never fail a request
            log.exception("telemetry hook %s failed", fn.__name__)

    return wrapper  # type: ignore[return-value]  # same signature as fn


class Children:
    """Labelled children of one metric, looked up once per label tuple (``labels()`` takes a lock and
    validates on every call). Label values are bounded upstream; the cap only guards against a bug."""

    def __init__(self, metric: Any, cap: int = 4096) -> None:
        self._metric = metric
        self._cap = cap
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            if len(self._children) >= self._cap:
                self._children.clear()
            child = self._children[labels] = self._metric.labels(*labels)
        return child

    def forget(self, value: str) -> None:
        """Drop the children with ``value`` among their labels (their series were removed)."""
        for labels in [k for k in self._children if value in k]:
            del self._children[labels]
