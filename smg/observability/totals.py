"""The routed-request totals the console's overview samples (`smg.console.stats.Totals`), read from the
metric families the requests already update.

In one process they are that process's own. Under ``--processes N`` (a serving process started with
``PROMETHEUS_MULTIPROC_DIR``) they are the whole instance's: every process's values in that directory,
summed as ``/metrics`` sums them, so each process's sampler sees the same totals.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from smg.console.stats import Totals
from smg.observability.metrics import Metrics
from smg.observability.multiprocess import MULTIPROC_ENV

_COUNTS = {
    "smg_router_requests_total": "requests",
    "smg_router_request_errors_total": "errors",
    "smg_mcp_tool_calls_total": "tool_calls",
}
_TOKENS = {"input": "prompt_tokens", "output": "completion_tokens"}
_BUCKET = "smg_router_request_duration_seconds_bucket"


def totals_reader(metrics: Metrics) -> Callable[[], Totals]:
    """A reader of the current totals: of this process's ``metrics``, or of every serving process of
    the instance when this one runs in multiprocess mode."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # unannotated
        return lambda: totals_of(registry.collect())
    return lambda: totals_of(metrics.registry.collect())


def totals_of(families: Iterable[Any]) -> Totals:
    """`Totals` of collected metric families (only the families it reads are looked at)."""
    sums = dict.fromkeys(("requests", "errors", "prompt_tokens", "completion_tokens", "tool_calls"), 0.0)
    tool_errors = 0.0
    buckets: dict[float, float] = {}
    for family in families:
        for sample in family.samples:
            name = sample.name
            if name == _BUCKET:
                upper = float(sample.labels["le"])
                buckets[upper] = buckets.get(upper, 0.0) + sample.value
            elif name in _COUNTS:
                sums[_COUNTS[name]] += sample.value
                if name == "smg_mcp_tool_calls_total" and sample.labels.get("result") == "error":
                    tool_errors += sample.value
            elif name == "smg_router_tokens_total":
                kind = _TOKENS.get(sample.labels.get("type", ""))
                if kind is not None:
                    sums[kind] += sample.value
    ordered = tuple(sorted(buckets.items(), key=lambda item: (math.isinf(item[0]), item[0])))
    return Totals(**sums, tool_errors=tool_errors, buckets=ordered)
