"""A ``--worker-file`` with a key the format does not have is refused, and the error names the file, the
line and the key (an in-process gateway watching the file)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smg.settings import WorkerSettings
from smg.testing.gateway import RunningGateway
from tests.conftest import make_settings


async def _watcher_error(
    start_gateway: Callable[..., Any], tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> str:
    path = tmp_path / "workers.yaml"
    path.write_text("[]\n", encoding="utf-8")
    settings = make_settings(workers=WorkerSettings(urls=(), file_path=str(path), request_timeout_secs=10))
    gw: RunningGateway = await start_gateway(settings)
    assert gw.context.worker_file is not None
    path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="smg.workers.discovery"):
        assert await gw.context.worker_file.sync_once() is False
    [record] = [r for r in caplog.records if r.name == "smg.workers.discovery"]
    message = record.getMessage()
    assert str(path) in message
    return message


async def test_a_mistyped_key_of_an_entry_is_named_with_its_line(
    start_gateway: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = "- http://127.0.0.1:1\n- url: http://127.0.0.1:2\n  apikey: sk-never-shown\n"
    message = await _watcher_error(start_gateway, tmp_path, content, caplog)
    assert "line 3: [1]: unknown key(s) 'apikey'" in message
    assert "sk-never-shown" not in message


async def test_a_mapping_instead_of_a_list_names_its_keys(
    start_gateway: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    message = await _watcher_error(start_gateway, tmp_path, "workers:\n  - http://127.0.0.1:1\n", caplog)
    assert "line 1: unknown key(s) 'workers'" in message
