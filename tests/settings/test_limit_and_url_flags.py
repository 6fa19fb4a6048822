"""Limit flags refuse negative values; worker URLs with credentials or a query are refused without
echoing their secrets."""

from __future__ import annotations

import pytest

from smg.errors import ConfigError
from smg.settings import parse_settings


@pytest.mark.parametrize(
    "url", ["http://user:pw@127.0.0.1:8000", "http://tok@127.0.0.1:8000", "http://127.0.0.1:8000/?key=abc"]
)
def test_worker_urls_with_credentials_or_a_query_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(["--worker-urls", url], env={})

    assert info.value.message.startswith("--worker-urls: 127.0.0.1:")
    assert (
        "pw" not in info.value.message and "abc" not in info.value.message and "tok" not in info.value.message
    )


@pytest.mark.parametrize(
    "flag", ["--max-messages-per-request", "--max-tools-per-request", "--shutdown-grace-period-secs",
             "--mcp-max-tool-output-bytes"],
)  # fmt: skip
def test_negative_limits_are_refused(flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings([flag, "-1"], env={})

    assert info.value.message.startswith(flag)


def test_an_invalid_worker_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(["--worker-urls", "ftp://bob:PASSWORD99@host"], env={})

    assert info.value.message == "--worker-urls: invalid URL 'ftp://bob:***@host'"
