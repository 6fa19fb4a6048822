"""Metrics of several serving processes as one exposition (prometheus_client's multiprocess mode).

A serving process started with ``PROMETHEUS_MULTIPROC_DIR`` (`MULTIPROC_ENV`) in its environment keeps
every value in memory-mapped files of that directory, one set per process ID. The supervisor, which
owns the directory, renders them all with `aggregated`: counters and histograms are summed over every
process that ever ran (a dead one's counts are kept), and each gauge combines as its
``multiprocess_mode`` says (`smg.observability.metrics`). `forget_process` drops a dead process's
live gauges, so they stop counting at once.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def aggregated(directory: str) -> Callable[[], bytes]:
    """A renderer of the exposition of every process whose values are in ``directory``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # unannotated

    def render() -> bytes:
        return generate_latest(registry)

    return render


def forget_process(pid: int, directory: str) -> None:
    """Remove the live gauges of the dead process ``pid`` from ``directory`` (its counts stay)."""
    mark_process_dead(pid, path=directory)  # type: ignore[no-untyped-call]  # unannotated
