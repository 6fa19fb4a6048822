"""`WorkerRegistry`: candidate selection, lookup by URL or id, and the public worker view."""

from __future__ import annotations

import json

import pytest

from smg.errors import ModelNotFound, NoAvailableWorkers, WorkerExists, WorkerNotFound
from smg.settings import BreakerSettings
from smg.workers.breaker import CircuitBreaker
from smg.workers.worker import Worker, WorkerRegistry, worker_id


def make_worker(
    url: str, *models: str, healthy: bool = True, unknown_models: bool = False, api_key: str | None = None
) -> Worker:
    return Worker(
        url=url,
        breaker=CircuitBreaker(BreakerSettings(failure_threshold=1)),
        api_key=api_key,
        models=None if unknown_models else frozenset(models),
        healthy=healthy,
    )


def registry_of(*workers: Worker) -> WorkerRegistry:
    registry = WorkerRegistry()
    for w in workers:
        registry.add(w)
    return registry


def test_candidates_are_the_routable_workers_serving_the_model() -> None:
    good = make_worker("http://a", "m")
    sick = make_worker("http://b", "m", healthy=False)
    tripped = make_worker("http://c", "m")
    tripped.breaker.record_failure()
    other = make_worker("http://d", "other")
    registry = registry_of(good, sick, tripped, other)

    assert registry.candidates("m") == [good]


def test_a_model_no_known_worker_serves_is_model_not_found() -> None:
    registry = registry_of(make_worker("http://a", "m"), make_worker("http://b", "n", healthy=False))

    with pytest.raises(ModelNotFound) as info:
        registry.candidates("nope")

    assert info.value.code == "model_not_found"
    assert info.value.status == 404
    assert info.value.param == "model"
    assert info.value.model == "nope"


def test_a_served_model_whose_workers_are_all_unhealthy_has_no_available_workers() -> None:
    registry = registry_of(make_worker("http://a", "m", healthy=False), make_worker("http://b", "n"))

    with pytest.raises(NoAvailableWorkers) as info:
        registry.candidates("m")

    assert info.value.code == "no_available_workers"
    assert info.value.status == 503


def test_a_served_model_whose_breakers_are_open_has_no_available_workers() -> None:
    tripped = make_worker("http://a", "m")
    tripped.breaker.record_failure()
    registry = registry_of(tripped)

    with pytest.raises(NoAvailableWorkers):
        registry.candidates("m")


def test_an_undiscovered_worker_makes_an_unknown_model_unavailable_not_missing() -> None:
    registry = registry_of(make_worker("http://a", "m"), make_worker("http://b", unknown_models=True))

    with pytest.raises(NoAvailableWorkers):
        registry.candidates("nope")


def test_an_empty_registry_has_no_available_workers() -> None:
    with pytest.raises(NoAvailableWorkers):
        WorkerRegistry().candidates("m")


def test_get_finds_a_worker_by_url_with_or_without_trailing_slash_and_by_id() -> None:
    w = make_worker("http://a:1", "m")
    registry = registry_of(w, make_worker("http://b:2", "m"))

    assert registry.get("http://a:1") is w
    assert registry.get("http://a:1/") is w
    assert registry.get(w.id) is w
    assert w.id == worker_id("http://a:1")


def test_get_of_an_unknown_worker_is_worker_not_found() -> None:
    registry = registry_of(make_worker("http://a", "m"))

    with pytest.raises(WorkerNotFound) as info:
        registry.get("http://nope")

    assert info.value.code == "worker_not_found"
    assert info.value.status == 404


@pytest.mark.parametrize("by", ["url", "id"])
def test_remove_by_url_or_id_returns_the_worker_and_forgets_it(by: str) -> None:
    w = make_worker("http://a", "m")
    registry = registry_of(w, make_worker("http://b", "m"))

    removed = registry.remove(w.url if by == "url" else w.id)

    assert removed is w
    assert "http://a" not in registry
    assert len(registry) == 1
    with pytest.raises(WorkerNotFound):
        registry.remove(w.url)


def test_adding_a_url_twice_is_worker_exists() -> None:
    registry = registry_of(make_worker("http://a", "m"))

    with pytest.raises(WorkerExists) as info:
        registry.add(make_worker("http://a", "n"))

    assert info.value.code == "worker_exists"
    assert info.value.status == 409
    assert registry.get("http://a").models == frozenset({"m"})


def test_describe_never_contains_the_api_key() -> None:
    secret = "sk-very-secret-upstream-key"
    w = make_worker("http://a", "m", api_key=secret)

    view = w.describe()

    assert secret not in json.dumps(view)
    assert secret not in repr(w)
    assert view["has_api_key"] is True
    assert view["circuit_breaker"] == "closed"
    assert view["id"] == w.id


def test_models_lists_what_healthy_workers_serve() -> None:
    registry = registry_of(
        make_worker("http://a", "m", "n"),
        make_worker("http://b", "z", healthy=False),
        make_worker("http://c", unknown_models=True),
    )

    assert registry.models() == ["m", "n"]
