"""`smg demo` logs through the gateway's logging set-up: a URL with credentials is written redacted."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest

from smg.testing.processes import spawn, stop, wait_for_line
from tests._helpers import closed_port_url

pytestmark = pytest.mark.e2e


def test_the_demo_writes_a_url_it_logs_with_its_credentials_redacted(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("w") as err:
        demo = spawn(
            [sys.executable, "-m", "smg", "demo", "--port", "0", "--log-level", "debug"], stderr=err.fileno()
        )
    try:
        wait_for_line(demo, "smg demo is running")
        gateway = wait_for_line(demo, "  gateway ").split()[0]
        port = closed_port_url().rsplit(":", 1)[1]
        secret = f"http://bob:PASSWORD99@127.0.0.1:{port}/mcp?token=TOKEN12345"

        refused = httpx.post(
            f"{gateway}/mcp/servers",
            json={"name": "leaky", "transport": "streamable-http", "url": secret},
            timeout=60,
        )
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(20) == 0
    finally:
        stop(demo)

    assert refused.status_code == 400, refused.text
    text = log.read_text()
    assert f"http://bob:***@127.0.0.1:{port}/mcp?token=***" in text  # the URL was logged, redacted
    assert "PASSWORD99" not in text and "TOKEN12345" not in text
