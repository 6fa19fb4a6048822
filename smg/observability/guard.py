"""The telemetry guard (`guarded`, `HOOK_FAILED`) and the cache of labelled children (`Children`) the
observers share."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger("smg.observability")
F = TypeVar("F", bound=Callable[..., None])
T = TypeVar("T")

HOOK_FAILED = "telemetry hook %s failed"
"""What the guard logs (with the traceback) when a hook fails. The hooks every request runs carry the
guard inline: ``except Exception: log.exception(HOOK_FAILED, name)`` (a ``try`` costs nothing until it
catches; `guarded`'s wrapper costs a call and a repacking of the arguments on every call)."""


def guarded(fn: F) -> F:
    """Run a telemetry hook; log and swallow any failure (the telemetry guard)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # the telemetry guard: a metrics bug must never fail a request
            log.exception(HOOK_FAILED, fn.__name__)

    return wrapper  # type: ignore[return-value]  # same signature as fn


def _same(child: Any) -> Any:
    return child


class Children(Generic[T]):
    """Labelled children of one metric, looked up once per label tuple (``labels()`` takes a lock and
    validates on every call), each kept as ``make`` turns it (an updater of `smg.observability.cells`;
    by default the child itself). Label values are bounded upstream; the cap only guards against a bug."""

    def __init__(self, metric: Any, make: Callable[[Any], T] = _same, cap: int = 4096) -> None:
        self._metric = metric
        self._make = make
        self._cap = cap
        self._children: dict[tuple[str, ...], T] = {}

    def __call__(self, *labels: str) -> T:
        child = self._children.get(labels)
        if child is None:
            if len(self._children) >= self._cap:
                self._children.clear()
            child = self._children[labels] = self._make(self._metric.labels(*labels))
        return child

    def forget(self, value: str) -> None:
        """Drop the children with ``value`` among their labels (their series were removed)."""
        for labels in [k for k in self._children if value in k]:
            del self._children[labels]
