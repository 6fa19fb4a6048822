"""Worker URLs never carry secrets into metric labels, logs or errors: a URL with credentials, a query
or a fragment is refused by the admin API and by the worker file."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests._helpers import assert_error
from tests.conftest import make_settings


@pytest.mark.parametrize(
    "secret_part", ["bob:PASSWORD99@", "TOKEN12345@", "/?token=TOKEN12345", "#PASSWORD99"]
)
async def test_admin_api_refuses_a_worker_url_carrying_a_secret(
    worker: RunningWorker, start_gateway: Callable[..., Any], secret_part: str
) -> None:
    gw: RunningGateway = await start_gateway(make_settings((worker.url,)))
    host = worker.url.removeprefix("http://")
    url = f"http://{secret_part}{host}" if secret_part.endswith("@") else worker.url + secret_part

    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as admin:
        refused = await admin.post("/workers", json={"url": url})
        listed = (await admin.get("/workers")).json()["workers"]

    assert_error(refused, 400, "invalid_request", param="url")
    assert [w["url"] for w in listed] == [worker.url]
    exposition = gw.context.metrics.render().decode()
    assert [t for t in (refused.text, exposition) if "PASSWORD99" in t or "TOKEN12345" in t] == []


async def test_a_worker_file_entry_carrying_a_secret_is_refused_and_logged_without_it(
    worker: RunningWorker, start_gateway: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = worker.url.removeprefix("http://")
    path = tmp_path / "workers.yaml"
    path.write_text(f"- http://bob:PASSWORD99@{host}\n")
    settings = make_settings()
    settings = dataclasses.replace(
        settings, workers=dataclasses.replace(settings.workers, file_path=str(path))
    )

    with caplog.at_level(logging.INFO):
        gw: RunningGateway = await start_gateway(settings)

    assert list(gw.context.registry) == []
    assert any("no credentials, query or fragment" in r.getMessage() for r in caplog.records)
    assert "PASSWORD99" not in caplog.text and "PASSWORD99" not in gw.context.metrics.render().decode()
