"""A serving process that exits before it serves stops the supervisor's start: the others are stopped,
nothing is announced, and `StartFailed` carries the process's exit status (what ``smg launch`` exits
with)."""

from __future__ import annotations

import asyncio

import pytest

from smg.serving.supervisor import StartFailed, supervise
from smg.settings import Settings
from smg.settings.groups import ServerSettings

pytestmark = pytest.mark.e2e


def test_a_serving_process_that_cannot_start_fails_the_start_with_its_exit_status() -> None:
    settings = Settings(server=ServerSettings(host="127.0.0.1", port=0, prometheus_port=0, processes=2))
    announced: list[str] = []

    async def run() -> None:
        async with asyncio.timeout(120):
            # the serving processes run `smg launch --no-such-flag`: a configuration error, status 2
            await supervise(
                settings, ["launch", "--no-such-flag"], on_ready=lambda url, _: announced.append(url)
            )

    with pytest.raises(StartFailed) as failed:
        asyncio.run(run())
    assert failed.value.code == 2 and announced == []
