"""Updaters that write a labelled child's values directly, for the hooks every request runs.

prometheus_client's public ``Counter.inc``, ``Gauge.set`` and ``Histogram.observe`` check on every call
that the metric is a child (two method calls), and ``observe`` looks for its bucket by a linear scan. A
child's value objects are made once, when the child is (``_metric_init``): a counter's and a gauge's
``_value``, a histogram's ``_sum`` and one value per bucket (``_buckets``, in the order of its
``_upper_bounds``, the last one ``+Inf``). Each is an instance of ``values.ValueClass``: ``MutexValue``
in one process, the multiprocess mode's ``MmapedValue`` (ADR 0016) with ``PROMETHEUS_MULTIPROC_DIR``
set. Their ``inc`` and ``set`` take the value's own lock and, in the multiprocess mode, check the PID
and write the value's file. So an updater made here calls those same methods with the same arguments
the public wrapper would pass, and the exposition is the same in both modes; it skips only the checks
that hold by construction (a child of a labelled family; a gauge whose mode is not ``mostrecent``).

These are internals of the pinned prometheus_client (constraints.txt);
``tests/observability/test_cells.py`` fails when they change. An updater belongs to its child: drop it
when the child's series is removed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

Update = Callable[[float], None]


def _child(metric: Any) -> None:
    if not metric._is_observable():
        raise ValueError(f"{metric._name} is a labelled family: make the updater of one of its children")


def counter_add(child: Counter) -> Update:
    """``child.inc`` for amounts known not to be negative (the caller's promise: it is not checked)."""
    _child(child)
    inc: Update = child._value.inc
    return inc


def gauge_add(child: Gauge) -> Update:
    """``child.inc(amount)``; a negative ``amount`` is ``child.dec(-amount)``."""
    _child(child)
    if child._is_most_recent:
        raise ValueError(f"{child._name}: a mostrecent gauge is only ever set")
    inc: Update = child._value.inc
    return inc


def gauge_set(child: Gauge) -> Callable[[int], None]:
    """``child.set(count)``, skipped when the gauge already holds ``count``. The value object keeps the
    value it last wrote (``_value``; the multiprocess mode's is also in its file, written there when the
    value was made), so the skipped write would have written what is there. Counts only: an ``int`` has
    no ``-0.0``, which equals ``0.0`` but is exposed differently."""
    _child(child)
    if child._is_most_recent:
        raise ValueError(f"{child._name}: a mostrecent gauge's value carries a timestamp")
    value = child._value
    write = value.set

    def set_(count: int) -> None:
        if count != value._value:
            write(float(count))

    return set_


def histogram_observe(child: Histogram) -> Update:
    """``child.observe``: its sum, then the first bucket whose bound is at least ``amount`` (none for NaN,
    as in ``observe``'s scan), found by bisection."""
    _child(child)
    bounds = tuple(child._upper_bounds)
    if len(bounds) != len(child._buckets) or bounds[-1] != math.inf:
        raise ValueError(f"{child._name}: buckets do not end at +Inf")
    add_sum = child._sum.inc
    buckets = tuple(bucket.inc for bucket in child._buckets)

    def observe(amount: float) -> None:
        add_sum(amount)
        i = bisect_left(bounds, amount)
        if amount <= bounds[i]:  # NaN lands on 0 here and is not counted, as the scan counts it nowhere
            buckets[i](1)

    return observe
