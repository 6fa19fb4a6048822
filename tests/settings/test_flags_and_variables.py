"""Flags, ``SMG_*`` variables, defaults and validation of `smg.settings`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from smg.errors import ConfigError
from smg.settings import (
    AdmissionSettings,
    RetrySettings,
    Settings,
    flag_table,
    parse_settings,
)


class _Case(NamedTuple):
    env: str
    env_expected: Any
    flag: tuple[str, ...]  # values after the flag; empty for boolean switches
    flag_expected: Any
    get: Callable[[Settings], Any]


_CASES: dict[str, _Case] = {
    "--host": _Case("127.0.0.2", "127.0.0.2", ("127.0.0.3",), "127.0.0.3", lambda s: s.server.host),
    "--port": _Case("8080", 8080, ("8081",), 8081, lambda s: s.server.port),
    "--worker-urls": _Case(
        "http://a:1,http://b:2",
        ("http://a:1", "http://b:2"),
        ("http://c:3",),
        ("http://c:3",),
        lambda s: s.workers.urls,
    ),
    "--worker-file": _Case("a.yaml", "a.yaml", ("b.yaml",), "b.yaml", lambda s: s.workers.file_path),
    "--worker-api-key": _Case("env-key", "env-key", ("flag-key",), "flag-key", lambda s: s.workers.api_key),
    "--policy": _Case(
        "round_robin", "round_robin", ("least_load",), "least_load", lambda s: s.workers.policy
    ),
    "--prometheus-host": _Case(
        "127.0.0.4", "127.0.0.4", ("127.0.0.5",), "127.0.0.5", lambda s: s.server.prometheus_host
    ),
    "--prometheus-port": _Case("9100", 9100, ("9101",), 9101, lambda s: s.server.prometheus_port),
    "--retry-max-retries": _Case("7", 7, ("8",), 8, lambda s: s.retry.max_retries),
    "--retry-initial-backoff-ms": _Case("10", 10.0, ("11",), 11.0, lambda s: s.retry.initial_backoff_ms),
    "--retry-max-backoff-ms": _Case("500", 500.0, ("600",), 600.0, lambda s: s.retry.max_backoff_ms),
    "--retry-backoff-multiplier": _Case("2", 2.0, ("3",), 3.0, lambda s: s.retry.backoff_multiplier),
    "--retry-jitter-factor": _Case("0.5", 0.5, ("0.1",), 0.1, lambda s: s.retry.jitter_factor),
    "--disable-retries": _Case("true", False, (), False, lambda s: s.retry.enabled),
    "--cb-failure-threshold": _Case("4", 4, ("5",), 5, lambda s: s.breaker.failure_threshold),
    "--cb-success-threshold": _Case("6", 6, ("7",), 7, lambda s: s.breaker.success_threshold),
    "--cb-timeout-duration-secs": _Case("7.5", 7.5, ("8.5",), 8.5, lambda s: s.breaker.timeout_secs),
    "--disable-circuit-breaker": _Case("yes", False, (), False, lambda s: s.breaker.enabled),
    "--health-check-interval-secs": _Case("11", 11.0, ("12",), 12.0, lambda s: s.health.interval_secs),
    "--health-check-timeout-secs": _Case("2", 2.0, ("3",), 3.0, lambda s: s.health.timeout_secs),
    "--health-failure-threshold": _Case("6", 6, ("7",), 7, lambda s: s.health.failure_threshold),
    "--health-success-threshold": _Case("4", 4, ("5",), 5, lambda s: s.health.success_threshold),
    "--health-check-endpoint": _Case("/ready", "/ready", ("/live",), "/live", lambda s: s.health.endpoint),
    "--disable-health-check": _Case("on", False, (), False, lambda s: s.health.enabled),
    "--max-concurrent-requests": _Case("12", 12, ("13",), 13, lambda s: s.admission.max_concurrent_requests),
    "--queue-size": _Case("3", 3, ("4",), 4, lambda s: s.admission.queue_size),
    "--queue-timeout-secs": _Case("9", 9.0, ("10",), 10.0, lambda s: s.admission.queue_timeout_secs),
    "--request-timeout-secs": _Case("30", 30.0, ("31",), 31.0, lambda s: s.workers.request_timeout_secs),
    "--max-payload-size": _Case("1024", 1024, ("2048",), 2048, lambda s: s.server.max_payload_size),
    "--max-request-head-bytes": _Case(
        "8192", 8192, ("16384",), 16384, lambda s: s.server.max_request_head_bytes
    ),
    "--request-head-timeout-secs": _Case(
        "2.5", 2.5, ("3",), 3.0, lambda s: s.server.request_head_timeout_secs
    ),
    "--api-key": _Case("k1 k2", ("k1", "k2"), ("k3",), ("k3",), lambda s: s.auth.api_keys),
    "--admin-api-key": _Case("a1,a2", ("a1", "a2"), ("a3",), ("a3",), lambda s: s.auth.admin_api_keys),
    "--log-level": _Case("debug", "debug", ("error",), "error", lambda s: s.server.log_level),
    "--log-json": _Case("1", True, (), True, lambda s: s.server.log_json),
    "--database-url": _Case(
        "postgresql://smg@db/a", "postgresql://smg@db/a", ("b.db",), "b.db", lambda s: s.server.database_url
    ),
    "--mcp-registry": _Case(
        "/tmp/a.db", "/tmp/a.db", ("/tmp/b.db",), "/tmp/b.db", lambda s: s.mcp.registry_path
    ),
    "--mcp-config-path": _Case("a.yaml", "a.yaml", ("b.yaml",), "b.yaml", lambda s: s.mcp.config_path),
    "--mcp-max-iterations": _Case("4", 4, ("5",), 5, lambda s: s.mcp.max_iterations),
    "--mcp-max-tool-calls": _Case("8", 8, ("9",), 9, lambda s: s.mcp.max_tool_calls),
    "--mcp-loop-timeout-secs": _Case("20", 20.0, ("21",), 21.0, lambda s: s.mcp.loop_timeout_secs),
    "--mcp-max-repeated-calls": _Case("2", 2, ("5",), 5, lambda s: s.mcp.max_repeated_calls),
    "--recent-loops": _Case("0", 0, ("7",), 7, lambda s: s.mcp.recent_loops),
    "--mcp-tools-ttl-secs": _Case("60", 60.0, ("61",), 61.0, lambda s: s.mcp.tools_ttl_secs),
    "--responses-ttl-secs": _Case("60", 60, ("61",), 61, lambda s: s.responses.ttl_secs),
    "--responses-max-stored": _Case("5", 5, ("6",), 6, lambda s: s.responses.max_stored),
    "--responses-max-background": _Case("3", 3, ("4",), 4, lambda s: s.responses.max_background),
    "--max-messages-per-request": _Case("5", 5, ("6",), 6, lambda s: s.limits.max_messages),
    "--max-tools-per-request": _Case("7", 7, ("0",), 0, lambda s: s.limits.max_tools),
    "--processes": _Case("4", 4, ("0",), 0, lambda s: s.server.processes),
    "--shutdown-grace-period-secs": _Case(
        "5", 5.0, ("0",), 0.0, lambda s: s.server.shutdown_grace_period_secs
    ),
    "--mcp-allowed-hosts": _Case(
        "127.0.0.1, *.internal",
        ("127.0.0.1", "*.internal"),
        ("LocalHost", "10.0.0.0/8"),
        ("localhost", "10.0.0.0/8"),
        lambda s: s.mcp.allowed_hosts,
    ),
    "--mcp-max-tool-output-bytes": _Case("100", 100, ("0",), 0, lambda s: s.mcp.max_tool_output_bytes),
    "--mcp-request-servers": _Case("yes", True, (), True, lambda s: s.mcp.request_servers),
    "--enable-trace": _Case("true", True, (), True, lambda s: s.trace.enabled),
    "--otlp-traces-endpoint": _Case(
        "otel:4317", "otel:4317", ("127.0.0.1:4318",), "127.0.0.1:4318", lambda s: s.trace.otlp_endpoint
    ),
}

_ENV_OF = {flag: env for flag, env, _help, _default in flag_table()}


def test_the_registry_file_defaults_to_the_users_state_directory() -> None:
    s = parse_settings([], env={"XDG_STATE_HOME": "/var/lib/x"})

    assert s.mcp.registry_path == "/var/lib/x/smg/mcp.db"


def test_defaults_equal_smg_defaults() -> None:
    s = parse_settings([], env={})

    assert dataclasses.replace(s, mcp=dataclasses.replace(s.mcp, registry_path=None)) == Settings()
    assert (s.server.host, s.server.port, s.server.prometheus_port) == ("0.0.0.0", 30000, 29000)
    assert s.server.max_payload_size == 536_870_912
    assert (s.workers.urls, s.workers.policy, s.workers.api_key) == ((), "cache_aware", None)
    assert s.workers.request_timeout_secs == 1800
    retry = s.retry
    assert (retry.max_retries, retry.initial_backoff_ms, retry.max_backoff_ms) == (5, 50, 30000)
    assert (retry.backoff_multiplier, retry.jitter_factor, retry.enabled) == (1.5, 0.2, True)
    breaker = s.breaker
    assert (breaker.failure_threshold, breaker.success_threshold, breaker.timeout_secs) == (10, 3, 60)
    assert breaker.enabled
    health = s.health
    assert (health.interval_secs, health.timeout_secs) == (60, 5)
    assert (health.failure_threshold, health.success_threshold, health.endpoint) == (3, 2, "/health")
    assert health.enabled
    admission = s.admission
    assert (admission.max_concurrent_requests, admission.queue_size, admission.queue_timeout_secs) == (
        -1,
        100,
        60,
    )
    assert (s.auth.api_keys, s.auth.admin_api_keys) == ((), ())


def test_flag_table_names_each_flag_with_its_smg_variable() -> None:
    for flag, env, help_text, _default in flag_table():
        assert flag.startswith("--")
        assert env == "SMG_" + flag[2:].replace("-", "_").upper()
        assert help_text


def test_every_flag_in_the_table_is_covered_by_these_tests() -> None:
    assert set(_ENV_OF) == set(_CASES)


@pytest.mark.parametrize("flag", sorted(_CASES))
def test_every_flag_can_be_set_through_its_environment_variable(flag: str) -> None:
    case = _CASES[flag]

    s = parse_settings([], env={_ENV_OF[flag]: case.env})

    assert case.get(s) == case.env_expected
    assert case.get(Settings()) != case.env_expected


@pytest.mark.parametrize("flag", sorted(_CASES))
def test_a_flag_on_the_command_line_wins_over_its_environment_variable(flag: str) -> None:
    case = _CASES[flag]
    env_value = "false" if not case.flag else case.env

    s = parse_settings([flag, *case.flag], env={_ENV_OF[flag]: env_value})

    assert case.get(s) == case.flag_expected


def test_list_variables_split_on_commas_and_spaces() -> None:
    env = {
        "SMG_WORKER_URLS": "http://a:1, http://b:2  http://c:3,",
        "SMG_API_KEY": "k1,,k2 k3",
        "SMG_ADMIN_API_KEY": " a1 ",
    }

    s = parse_settings([], env=env)

    assert s.workers.urls == ("http://a:1", "http://b:2", "http://c:3")
    assert s.auth.api_keys == ("k1", "k2", "k3")
    assert s.auth.admin_api_keys == ("a1",)


def test_repeated_list_flags_accumulate() -> None:
    s = parse_settings(["--api-key", "k1", "--api-key", "k2", "k3"], env={})

    assert s.auth.api_keys == ("k1", "k2", "k3")


def test_worker_urls_lose_their_trailing_slash() -> None:
    s = parse_settings(["--worker-urls", "http://a:1/", "https://b"], env={})

    assert s.workers.urls == ("http://a:1", "https://b")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" On ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_variables_accept_the_usual_spellings(raw: str, expected: bool) -> None:
    s = parse_settings([], env={"SMG_LOG_JSON": raw, "SMG_DISABLE_RETRIES": raw})

    assert s.server.log_json is expected
    assert s.retry.enabled is not expected


def test_a_boolean_variable_with_another_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings([], env={"SMG_DISABLE_HEALTH_CHECK": "maybe"})

    assert info.value.code == "invalid_config"


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--port", "-1"],
        ["--port", "notanumber"],
        ["--prometheus-port", "65536"],
        ["--retry-jitter-factor", "2"],
        ["--retry-jitter-factor", "-0.1"],
        ["--retry-backoff-multiplier", "0.5"],
        ["--retry-backoff-multiplier", "nan"],
        ["--retry-max-retries", "0"],
        ["--retry-initial-backoff-ms", "-1"],
        ["--cb-failure-threshold", "0"],
        ["--cb-timeout-duration-secs", "0"],
        ["--health-check-interval-secs", "0"],
        ["--health-check-endpoint", "health"],
        ["--max-concurrent-requests", "-2"],
        ["--queue-size", "-1"],
        ["--queue-timeout-secs", "0"],
        ["--request-timeout-secs", "0"],
        ["--max-payload-size", "0"],
        ["--max-request-head-bytes", "0"],
        ["--request-head-timeout-secs", "0"],
        ["--request-head-timeout-secs", "-1"],
        ["--policy", "fastest"],
        ["--log-level", "loud"],
        ["--worker-urls", "ftp://x"],
        ["--worker-urls", "http://"],
        ["--worker-urls", "127.0.0.1:8000"],
        ["--api-key", " "],
        ["--worker-file", " "],
        ["--no-such-flag"],
        ["--port"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_bad_flag_values_are_config_errors(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_settings(argv, env={})


@pytest.mark.parametrize(
    "env",
    [
        {"SMG_PORT": "70000"},
        {"SMG_PORT": "notanumber"},
        {"SMG_RETRY_JITTER_FACTOR": "2"},
        {"SMG_POLICY": "fastest"},
        {"SMG_WORKER_URLS": "http://ok:1,ftp://x"},
        {"SMG_HEALTH_CHECK_ENDPOINT": "health"},
    ],
    ids=lambda env: " ".join(f"{k}={v}" for k, v in env.items()),
)
def test_bad_variable_values_are_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        parse_settings([], env=env)


@pytest.mark.parametrize("url", ["http://worker:abc", "http://127.0.0.1:99999"])
def test_a_worker_url_with_an_invalid_port_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_settings(["--worker-urls", url], env={})


def test_unbounded_concurrency_is_derived_from_the_host_and_at_least_4096() -> None:
    limit = AdmissionSettings(max_concurrent_requests=-1).limit

    assert limit is not None
    assert limit >= 4096


def test_zero_concurrency_means_no_limit() -> None:
    assert AdmissionSettings(max_concurrent_requests=0).limit is None


@pytest.mark.parametrize("n", [1, 7, 100_000])
def test_a_positive_concurrency_is_the_limit(n: int) -> None:
    assert AdmissionSettings(max_concurrent_requests=n).limit == n


def test_retry_attempts_count_the_first_attempt() -> None:
    assert RetrySettings(max_retries=5).attempts == 5
    assert RetrySettings(max_retries=1).attempts == 1
    with pytest.raises(ValueError):  # validated however it is built: there is always a first attempt
        RetrySettings(max_retries=0)


def test_disabled_retries_make_exactly_one_attempt() -> None:
    assert RetrySettings(max_retries=5, enabled=False).attempts == 1
    assert parse_settings(["--disable-retries", "--retry-max-retries", "9"], env={}).retry.attempts == 1


def test_secrets_do_not_appear_in_the_settings_repr() -> None:
    s = parse_settings(
        ["--api-key", "data-secret", "--admin-api-key", "admin-secret", "--worker-api-key", "up-secret"],
        env={},
    )

    text = repr(s)

    assert "data-secret" not in text
    assert "admin-secret" not in text
    assert "up-secret" not in text


def test_smg_with_a_bad_flag_exits_2_with_one_error_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMG_")}

    done = subprocess.run(
        [sys.executable, "-m", "smg", "--port", "notanumber"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("smg: error:")
    assert "Traceback" not in done.stderr
