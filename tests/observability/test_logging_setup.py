"""`configure_logging`, the one logging set-up of every entry point: no URL secret in any line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from smg.observability.logs import configure_logging

SECRET_URL = "http://bob:PASSWORD99@127.0.0.1:8931/mcp?token=TOKEN12345"
REDACTED_URL = "http://bob:***@127.0.0.1:8931/mcp?token=***"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The stream the set-up under test writes to; the root logger is restored afterwards."""
    root, httpx2 = logging.getLogger(), logging.getLogger("httpx2")
    saved = (root.handlers[:], root.level, httpx2.level)
    try:
        yield io.StringIO()
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        httpx2.setLevel(saved[2])


def test_a_url_logged_by_a_library_is_written_with_its_secrets_redacted(stream: io.StringIO) -> None:
    configure_logging("debug", stream=stream)

    logging.getLogger("mcp.client.streamable_http").debug("Connecting to endpoint: %s", SECRET_URL)

    text = stream.getvalue()
    assert REDACTED_URL in text
    assert "PASSWORD99" not in text and "TOKEN12345" not in text


def test_json_lines_are_redacted_too(stream: io.StringIO) -> None:
    configure_logging("info", json=True, stream=stream)

    logging.getLogger("smg.test").warning("cannot reach %s", SECRET_URL)

    [line] = stream.getvalue().splitlines()
    doc = orjson.loads(line)
    assert doc["message"] == f"cannot reach {REDACTED_URL}"
    assert (doc["level"], doc["logger"]) == ("warning", "smg.test")


def test_off_writes_nothing_and_the_mcp_client_http_log_stays_at_warnings(stream: io.StringIO) -> None:
    configure_logging("debug", stream=stream)
    logging.getLogger("httpx2").info("HTTP Request: POST %s", SECRET_URL)
    assert stream.getvalue() == ""

    configure_logging("off", stream=stream)
    logging.getLogger("smg.test").error("failed: %s", SECRET_URL)
    assert stream.getvalue() == ""
