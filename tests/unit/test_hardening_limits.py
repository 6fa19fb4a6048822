"""Host allow-list patterns, URL redaction, tool-output truncation, request limits and the settings that
configure them."""

from __future__ import annotations

import orjson
import pytest

from smg.errors import ConfigError
from smg.mcp.errors import McpHostNotAllowed
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import HostAllowList, redact_url, scrub
from smg.mcp.runtime.convert import truncate_text
from smg.protocol import TooManyMessages, TooManyTools, parse_chat_request
from smg.settings import RequestLimits, parse_settings


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("mcp.internal", True),
        ("a.b.internal", True),
        ("internal", False),
        ("evil-internal", False),
        ("10.1.2.3", True),
        ("11.0.0.1", False),
        ("::1", True),
        ("example.com", False),
        ("127.0.0.2", False),
    ],
)
def test_allow_list_matches_names_suffixes_addresses_and_networks(host: str, allowed: bool) -> None:
    hosts = HostAllowList(["127.0.0.1,localhost", "*.internal 10.0.0.0/8", "[::1]"])

    assert hosts.allows_host(host) is allowed


def test_an_address_pattern_does_not_allow_a_name_even_if_it_resolves_there() -> None:
    assert not HostAllowList(["127.0.0.0/8"]).allows_host("localhost")


def test_empty_or_star_allow_list_allows_every_host() -> None:
    assert HostAllowList([]).allows_any
    assert HostAllowList(["localhost", "*"]).allows_host("example.com")


def test_check_raises_a_403_naming_the_host_and_ignores_urlless_servers() -> None:
    hosts = HostAllowList(["localhost"])

    with pytest.raises(McpHostNotAllowed) as info:
        hosts.check("docs", "https://user:pw@example.com:8443/mcp?token=abc")
    hosts.check("calc", None)

    assert (info.value.status, info.value.code, info.value.host) == (
        403,
        "mcp_host_not_allowed",
        "example.com",
    )
    assert "pw" not in info.value.message and "abc" not in info.value.message


@pytest.mark.parametrize("bad", ["http://x", "a..b", "*.", "exa mple$", "1.2.3.4/99"])
def test_malformed_patterns_are_refused_at_start_up(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(["--mcp-allowed-hosts", bad], env={})

    assert info.value.message.startswith("--mcp-allowed-hosts:")


def test_redact_url_hides_passwords_tokens_and_query_values() -> None:
    assert (
        redact_url("https://bob:s3cret@h:1/mcp?token=abc&v=2#frag")
        == "https://bob:***@h:1/mcp?token=***&v=***#***"
    )
    assert redact_url("https://tok3n@h/mcp") == "https://***@h/mcp"
    assert redact_url("http://127.0.0.1:9000/mcp") == "http://127.0.0.1:9000/mcp"


def test_scrub_removes_the_url_and_its_secret_parts_from_a_failure_text() -> None:
    url = "http://bob:s3cret@127.0.0.1:1/mcp?token=abcdef"
    text = f"HTTPStatusError: Client error '404' for url '{url}'; also abcdef and s3cret"

    cleaned = scrub(text, url)

    assert "s3cret" not in cleaned and "abcdef" not in cleaned
    assert "127.0.0.1:1/mcp?token=***" in cleaned


def test_a_spec_shows_its_url_redacted_but_stores_it_as_written() -> None:
    spec = ServerSpec(name="docs", transport="streamable-http", url="https://u:pw@h/mcp?key=k123")

    assert spec.redacted()["url"] == "https://u:***@h/mcp?key=***"
    assert "pw" not in repr(spec) and "k123" not in repr(spec)
    assert spec.to_dict()["url"] == "https://u:pw@h/mcp?key=k123"


def test_truncated_tool_output_keeps_whole_characters_and_says_so() -> None:
    text = "é" * 10  # 20 bytes

    cut = truncate_text(text, 5)

    assert cut.startswith("éé\n")
    assert cut.endswith("[smg: tool output truncated: 20 bytes, only the first 5 bytes are shown]")
    assert truncate_text(text, 20) is text
    assert truncate_text(text, 0) is text


def _body(messages: int, tools: int = 0) -> bytes:
    return orjson.dumps(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}] * messages,
            "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(tools)],
        }
    )


def test_request_limits_refuse_too_many_messages_or_tools_with_their_own_codes() -> None:
    limits = RequestLimits(max_messages=3, max_tools=2)

    parse_chat_request(_body(3, 2), headers={}, limits=limits)
    with pytest.raises(TooManyMessages) as messages:
        parse_chat_request(_body(4), headers={}, limits=limits)
    with pytest.raises(TooManyTools) as tools:
        parse_chat_request(_body(1, 3), headers={}, limits=limits)

    assert (messages.value.status, messages.value.code, messages.value.param) == (
        400,
        "too_many_messages",
        "messages",
    )
    assert (tools.value.status, tools.value.code, tools.value.param) == (400, "too_many_tools", "tools")


def test_zero_means_no_request_limit() -> None:
    parse_chat_request(_body(50, 50), headers={}, limits=RequestLimits(max_messages=0, max_tools=0))


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
