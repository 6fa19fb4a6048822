"""``--worker-file``: a watched YAML or JSON list of workers, applied to an in-process gateway."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from smg.observability.metrics import Metrics
from smg.settings import WorkerSettings
from smg.testing.gateway import RunningGateway
from smg.workers.discovery import WorkerFileWatcher
from tests._helpers import sample
from tests.conftest import chat_body, make_settings

DISCOVERY = "smg_discovery_registrations_total"

Watch = Callable[..., Awaitable[tuple[httpx.AsyncClient, WorkerFileWatcher]]]


class WorkerFile:
    """The YAML worker file a test writes; the gateway `watch` starts reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")


@pytest.fixture
def worker_file(tmp_path: Path) -> WorkerFile:
    return WorkerFile(tmp_path / "workers.yaml")


@pytest.fixture
def watch(start_gateway: Callable[..., Any], stack: AsyncExitStack, worker_file: WorkerFile) -> Watch:
    """``client, watcher = await watch(*urls, path=...)``: a gateway started with ``urls`` as
    ``--worker-urls`` and ``path`` (`worker_file` unless given) as ``--worker-file``; its client and its
    file watcher."""

    async def start(*urls: str, path: Path = worker_file.path) -> tuple[httpx.AsyncClient, WorkerFileWatcher]:
        workers = WorkerSettings(
            urls=urls, policy="round_robin", request_timeout_secs=10, file_path=str(path)
        )
        gw: RunningGateway = await start_gateway(make_settings(urls, workers=workers))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
        watcher = gw.context.worker_file
        assert watcher is not None
        return client, watcher

    return start


async def _listed(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    resp = await client.get("/workers")
    assert resp.status_code == 200
    return {w["url"]: w for w in resp.json()["workers"]}


def _file_count(metrics: Metrics, result: str) -> float:
    return sample(metrics, DISCOVERY, source="file", result=result) or 0.0


async def test_workers_listed_in_the_file_are_registered_at_start(
    start_worker: Callable[..., Any], watch: Watch, worker_file: WorkerFile, metrics: Metrics
) -> None:
    a, b = await start_worker(), await start_worker()
    worker_file.write(f"- {a.url}\n- url: {b.url}/\n  api_key: sk-upstream\n")

    client, _ = await watch()

    listed = await _listed(client)
    assert set(listed) == {a.url, b.url}
    assert listed[a.url]["has_api_key"] is False
    assert listed[b.url]["has_api_key"] is True
    assert _file_count(metrics, "added") == 2


async def test_a_json_file_of_url_objects_is_accepted(
    start_worker: Callable[..., Any], watch: Watch, tmp_path: Path
) -> None:
    a = await start_worker()
    path = tmp_path / "workers.json"
    path.write_bytes(orjson.dumps([{"url": a.url}]))

    client, _ = await watch(path=path)

    assert set(await _listed(client)) == {a.url}


async def test_a_worker_appended_to_the_file_serves_requests_after_a_sync(
    start_worker: Callable[..., Any], watch: Watch, worker_file: WorkerFile, metrics: Metrics
) -> None:
    a = await start_worker()
    b = await start_worker(models=("file-model",))
    worker_file.write(f"- {a.url}\n")
    client, watcher = await watch()

    worker_file.write(f"- {a.url}\n- {b.url}\n")
    await watcher.sync_once()
    resp = await client.post("/v1/chat/completions", json={**chat_body(), "model": "file-model"})

    assert resp.status_code == 200, resp.text
    assert b.stats.chat_requests == 1
    assert _file_count(metrics, "added") == 2


async def test_a_worker_removed_from_the_file_is_removed_from_the_pool(
    start_worker: Callable[..., Any], watch: Watch, worker_file: WorkerFile, metrics: Metrics
) -> None:
    a, b = await start_worker(), await start_worker()
    worker_file.write(f"- {a.url}\n- {b.url}\n")
    client, watcher = await watch()

    worker_file.write(f"- {a.url}\n")
    await watcher.sync_once()

    assert set(await _listed(client)) == {a.url}
    assert _file_count(metrics, "removed") == 1


async def test_the_file_never_removes_workers_registered_by_flags_or_the_admin_api(
    start_worker: Callable[..., Any], watch: Watch, worker_file: WorkerFile, metrics: Metrics
) -> None:
    flagged, admin, filed = await start_worker(), await start_worker(), await start_worker()
    worker_file.write(f"- {flagged.url}\n- {filed.url}\n")
    client, watcher = await watch(flagged.url)
    assert (await client.post("/workers", json={"url": admin.url})).status_code == 201

    worker_file.write(f"- {admin.url}\n")
    await watcher.sync_once()
    worker_file.write("[]\n")
    await watcher.sync_once()

    assert set(await _listed(client)) == {flagged.url, admin.url}
    assert (_file_count(metrics, "added"), _file_count(metrics, "removed")) == (1, 1)
    assert sample(metrics, DISCOVERY, source="flags", result="added") == 1


async def test_an_unchanged_file_is_not_applied_again(
    start_worker: Callable[..., Any], watch: Watch, worker_file: WorkerFile, metrics: Metrics
) -> None:
    a = await start_worker()
    worker_file.write(f"- {a.url}\n")
    _, watcher = await watch()

    assert await watcher.sync_once() is False
    assert _file_count(metrics, "added") == 1


@pytest.mark.parametrize(
    "content",
    [
        "[unclosed\n",
        "- http://127.0.0.1:1\n  - [unclosed\n",
        "",
        "url: http://127.0.0.1:1\n",
        "- ftp://127.0.0.1:1\n",
        "- http://127.0.0.1:99999\n",
        "- {url: http://127.0.0.1:1, apikey: sk-secret}\n",
        "- {url: http://127.0.0.1:1, api_key: 7}\n",
        "- http://127.0.0.1:1\n- http://127.0.0.1:1/\n",
        "- url: http://127.0.0.1:1\n  api_key: sk-secret\n  x: [\n",
    ],
    ids=[
        "yaml",
        "bad-url",
        "empty",
        "mapping",
        "scheme",
        "port",
        "unknown-key",
        "key-type",
        "duplicate",
        "secret",
    ],
)
async def test_a_malformed_file_logs_one_error_and_changes_nothing(
    content: str,
    start_worker: Callable[..., Any],
    watch: Watch,
    worker_file: WorkerFile,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = await start_worker()
    worker_file.write(f"- {a.url}\n")
    client, watcher = await watch()

    worker_file.write(content)
    with caplog.at_level(logging.ERROR, logger="smg.workers.discovery"):
        changed = [await watcher.sync_once(), await watcher.sync_once()]

    assert changed == [False, False]
    assert set(await _listed(client)) == {a.url}
    assert _file_count(metrics, "removed") == 0
    errors = [r for r in caplog.records if r.name == "smg.workers.discovery"]
    assert len(errors) == 1
    assert "sk-secret" not in caplog.text


async def test_a_missing_file_is_picked_up_once_it_appears(
    start_worker: Callable[..., Any], watch: Watch, worker_file: WorkerFile, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start_worker()
    with caplog.at_level(logging.ERROR, logger="smg.workers.discovery"):
        client, watcher = await watch()
        await watcher.sync_once()

    assert len([r for r in caplog.records if r.name == "smg.workers.discovery"]) == 1
    assert await _listed(client) == {}

    worker_file.write(f"- {a.url}\n")
    await watcher.sync_once()

    assert set(await _listed(client)) == {a.url}


class _Stop(Exception):
    pass


async def test_the_watch_loop_applies_the_file_after_each_interval(
    start_worker: Callable[..., Any],
    start_gateway: Callable[..., Any],
    stack: AsyncExitStack,
    worker_file: WorkerFile,
) -> None:
    a = await start_worker()
    worker_file.write(f"- {a.url}\n")
    gw: RunningGateway = await start_gateway(make_settings())
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw.url, timeout=10))
    delays: list[float] = []

    async def sleep(secs: float) -> None:
        delays.append(secs)
        if len(delays) > 1:
            raise _Stop

    watcher = WorkerFileWatcher(worker_file.path, gw.context.pool, interval_secs=2.0, sleep=sleep)
    with pytest.raises(_Stop):
        await watcher.run()

    assert delays == [2.0, 2.0]
    assert set(await _listed(client)) == {a.url}
