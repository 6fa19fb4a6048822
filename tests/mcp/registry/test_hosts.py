"""The MCP host allow-list (patterns, start-up checks) and URL redaction in failures and specs."""

from __future__ import annotations

import pytest

from smg.errors import ConfigError
from smg.mcp.errors import McpHostNotAllowed
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import HostAllowList, redact_url, scrub
from smg.settings import parse_settings


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
