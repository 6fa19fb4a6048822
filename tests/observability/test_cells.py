"""The updaters of `smg.observability.cells` write what prometheus_client's public API writes, in one process
and in the multiprocess mode: two children of one family, one fed through the public API and one through
the updaters, expose the same samples. They reach into prometheus_client's internals (pinned in
constraints.txt), so this is the test that fails when those change."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

from smg.observability.cells import counter_add, gauge_add, gauge_set, histogram_observe
from smg.observability.metrics import DURATION_BUCKETS

# Bounds themselves, just past them, the extremes, and what the scan counts nowhere (NaN).
OBSERVED = (0.0, 0.001, 0.0010001, 0.3, 7200.0, 7200.5, math.inf, -1.0, 1e-9, math.nan, 2.5)
# A set to the value the gauge holds is not written again (the result is the same).
GAUGE_STEPS = (
    ("add", 1.0), ("add", 1.0), ("add", -1.0), ("set", 7), ("set", 7), ("add", 0.5), ("set", 3),
    ("add", -3.0), ("set", 0), ("set", 0), ("add", 2.0), ("set", 2),
)  # fmt: skip


@dataclass
class Families:
    """Where the test's families are registered, and what reads their values back: the registry itself,
    or in the multiprocess mode a collector of the files they were written to (what the supervisor
    renders)."""

    registry: CollectorRegistry
    exposed: CollectorRegistry


@pytest.fixture(params=["one_process", "multiprocess"])
def families(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Families]:
    registry = CollectorRegistry()
    if request.param == "one_process":
        yield Families(registry, registry)
        return
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # A serving process picks the value class when prometheus_client is imported, from the variable.
    mmaped = values.MultiProcessValue()
    monkeypatch.setattr(values, "ValueClass", mmaped)
    exposed = CollectorRegistry()
    MultiProcessCollector(exposed, path=str(tmp_path))  # type: ignore[no-untyped-call]  # unannotated
    yield Families(registry, exposed)
    mmaped.close_all_files()


def _samples(families: Families) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample values by way of writing (``way`` label), each keyed by name and its other labels."""
    by_way: dict[str, dict[tuple[tuple[str, str], ...], float]] = {"public": {}, "cells": {}}
    for family in families.exposed.collect():
        for s in family.samples:
            if s.name.endswith("_created"):  # when the child was made, not what was written to it
                continue
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "way"))
            by_way[s.labels["way"]][(("", s.name), *labels)] = s.value
    return by_way


def _same(by_way: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> None:
    public, cells = by_way["public"], by_way["cells"]
    assert public.keys() == cells.keys()
    for key, value in public.items():
        assert value == cells[key] or (math.isnan(value) and math.isnan(cells[key])), key


def test_counter_gauge_and_histogram_updaters_expose_what_the_public_api_does(families: Families) -> None:
    registry = families.registry
    counter = Counter("c", "c", ["way"], registry=registry)
    gauge = Gauge("g", "g", ["way"], registry=registry, multiprocess_mode="livesum")
    histogram = Histogram("h", "h", ["way"], buckets=DURATION_BUCKETS, registry=registry)

    add = counter_add(counter.labels("cells"))
    for amount in (1, 2.5, 0):
        counter.labels("public").inc(amount)
        add(amount)
    moved, put = gauge_add(gauge.labels("cells")), gauge_set(gauge.labels("cells"))
    for step, amount in GAUGE_STEPS:
        if step == "set":
            gauge.labels("public").set(amount)
            put(int(amount))
        else:
            gauge.labels("public").inc(amount)
            moved(amount)
    observe = histogram_observe(histogram.labels("cells"))
    for amount in OBSERVED:
        histogram.labels("public").observe(amount)
        observe(amount)

    by_way = _samples(families)
    _same(by_way)
    assert by_way["cells"][(("", "g"),)] == 2.0 and by_way["cells"][(("", "c_total"),)] == 3.5
    # Every bucket got what the public scan gives it (NaN is counted in none: 10 of 11 observations).
    assert by_way["cells"][(("", "h_count"),)] == 10


def test_an_updater_is_only_made_for_a_child_and_never_for_a_most_recent_gauge() -> None:
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match="labelled family"):
        counter_add(Counter("c", "c", ["way"], registry=registry))
    recent = Gauge("g", "g", registry=registry, multiprocess_mode="mostrecent")
    with pytest.raises(ValueError, match="mostrecent"):
        gauge_set(recent)
    with pytest.raises(ValueError, match="mostrecent"):
        gauge_add(recent)
