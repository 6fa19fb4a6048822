"""Typed, frozen settings: the only reader of command-line flags and ``SMG_*`` environment variables.

Every flag ``--some-flag`` also reads ``SMG_SOME_FLAG``; a flag given on the command line wins over the
variable. List flags take several values on the command line and a comma- or space-separated list in
the variable; boolean flags take ``1/true/yes/on`` or ``0/false/no/off`` in the variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from smg.errors import ConfigError
from smg.mcp.registry.hosts import HostAllowList, redact_url
from smg.mcp.registry.store import default_registry_path

POLICIES = ("round_robin", "random", "least_load", "power_of_two", "cache_aware")
LOG_LEVELS = ("debug", "info", "warn", "warning", "error")


@dataclass(frozen=True)
class RetrySettings:
    max_retries: int = 5
    initial_backoff_ms: float = 50.0
    max_backoff_ms: float = 30_000.0
    backoff_multiplier: float = 1.5
    jitter_factor: float = 0.2
    enabled: bool = True

    @property
    def attempts(self) -> int:
        """Total attempts per request (``--retry-max-retries`` counts attempts, as SMG does)."""
        return max(1, self.max_retries) if self.enabled else 1


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 10
    success_threshold: int = 3
    timeout_secs: float = 60.0
    enabled: bool = True


@dataclass(frozen=True)
class HealthSettings:
    interval_secs: float = 60.0
    timeout_secs: float = 5.0
    failure_threshold: int = 3
    success_threshold: int = 2
    endpoint: str = "/health"
    enabled: bool = True


@dataclass(frozen=True)
class AdmissionSettings:
    max_concurrent_requests: int = -1
    queue_size: int = 100
    queue_timeout_secs: float = 60.0

    @property
    def limit(self) -> int | None:
        """Concurrency bound in force: None when disabled (0); derived from the host for -1."""
        if self.max_concurrent_requests == 0:
            return None
        if self.max_concurrent_requests < 0:
            return max(4096, 1024 * (os.cpu_count() or 1))
        return self.max_concurrent_requests


@dataclass(frozen=True)
class AuthSettings:
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    admin_api_keys: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class WorkerSettings:
    urls: tuple[str, ...] = ()
    policy: str = "cache_aware"
    api_key: str | None = field(default=None, repr=False)
    request_timeout_secs: float = 1800.0
    file_path: str | None = None  # --worker-file: watched YAML/JSON list of workers


@dataclass(frozen=True)
class McpSettings:
    registry_path: str | None = None  # None: no registry file (tests); the CLI always sets one
    config_path: str | None = None
    max_iterations: int = 10
    max_tool_calls: int = 64
    loop_timeout_secs: float = 300.0
    max_repeated_calls: int = 3
    tools_ttl_secs: float = 300.0
    registry_poll_secs: float = 2.0
    allowed_hosts: tuple[str, ...] = ()  # host patterns MCP server URLs may name; empty: any host
    max_tool_output_bytes: int = 262_144  # of one tool result, as fed back to the model


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one chat request, checked before anything else happens (0 in a field: no bound)."""

    max_messages: int = 4096
    max_tools: int = 512


@dataclass(frozen=True)
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = 30000
    prometheus_host: str | None = None
    prometheus_port: int = 29000
    max_payload_size: int = 536_870_912
    max_request_head_bytes: int = 65_536
    request_head_timeout_secs: float = 10.0
    shutdown_grace_period_secs: float = 30.0
    log_level: str = "info"
    log_json: bool = False

    @property
    def metrics_host(self) -> str:
        if self.prometheus_host is not None:
            return self.prometheus_host
        return "::" if ":" in self.host else "0.0.0.0"


@dataclass(frozen=True)
class TraceSettings:
    enabled: bool = False
    otlp_endpoint: str = "localhost:4317"


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = ServerSettings()
    workers: WorkerSettings = WorkerSettings()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    health: HealthSettings = HealthSettings()
    admission: AdmissionSettings = AdmissionSettings()
    limits: RequestLimits = RequestLimits()
    auth: AuthSettings = AuthSettings()
    mcp: McpSettings = McpSettings()
    trace: TraceSettings = TraceSettings()


# --- flag table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    name: str
    kind: Callable[[str], Any] | None  # None: boolean switch
    default: Any
    help: str
    many: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "SMG_" + self.dest.upper()


_FLAGS: tuple[_Flag, ...] = (
    _Flag("host", str, "0.0.0.0", "address the gateway binds"),
    _Flag("port", int, 30000, "port the gateway binds (0: a free port)"),
    _Flag("worker-urls", str, (), "worker base URLs, e.g. http://127.0.0.1:8000", many=True),
    _Flag("worker-file", str, None, "YAML or JSON file listing workers, watched for changes"),
    _Flag("worker-api-key", str, None, "upstream API key sent to the --worker-urls workers (never logged)"),
    _Flag("policy", str, "cache_aware", "worker selection policy", choices=POLICIES),
    _Flag("prometheus-host", str, None, "address of the metrics listener (default: --host's family)"),
    _Flag("prometheus-port", int, 29000, "port of the metrics listener (0: a free port)"),
    _Flag("retry-max-retries", int, 5, "total attempts per request, the first included"),
    _Flag("retry-initial-backoff-ms", float, 50.0, "backoff before the first retry"),
    _Flag("retry-max-backoff-ms", float, 30000.0, "upper bound of one backoff"),
    _Flag("retry-backoff-multiplier", float, 1.5, "growth factor between backoffs (>= 1)"),
    _Flag("retry-jitter-factor", float, 0.2, "relative jitter of a backoff (0..1)"),
    _Flag("disable-retries", None, False, "one attempt per request"),
    _Flag("cb-failure-threshold", int, 10, "consecutive failures that open a worker's breaker"),
    _Flag("cb-success-threshold", int, 3, "successes in half-open that close it again"),
    _Flag("cb-timeout-duration-secs", float, 60.0, "time a breaker stays open before half-open"),
    _Flag("disable-circuit-breaker", None, False, "never open breakers"),
    _Flag("health-check-interval-secs", float, 60.0, "time between health probes of a worker"),
    _Flag("health-check-timeout-secs", float, 5.0, "timeout of one health probe"),
    _Flag("health-failure-threshold", int, 3, "consecutive failed probes that mark a worker unhealthy"),
    _Flag("health-success-threshold", int, 2, "consecutive good probes that mark it healthy again"),
    _Flag("health-check-endpoint", str, "/health", "path probed on each worker"),
    _Flag("disable-health-check", None, False, "do not probe; every worker counts as healthy"),
    _Flag("max-concurrent-requests", int, -1, "concurrent requests (-1: 1024 per core, >= 4096; 0: off)"),
    _Flag("queue-size", int, 100, "requests that may wait for a permit (0: reject at once)"),
    _Flag("queue-timeout-secs", float, 60.0, "longest wait for a permit"),
    _Flag("request-timeout-secs", float, 1800.0, "timeout of one worker attempt"),
    _Flag("max-payload-size", int, 536_870_912, "largest request body in bytes"),
    _Flag("max-request-head-bytes", int, 65_536, "largest request line plus headers in bytes (431 above)"),
    _Flag("request-head-timeout-secs", float, 10.0, "time a connection has to send a complete request head"),
    _Flag("max-messages-per-request", int, 4096, "messages a chat request may carry (0: no limit)"),
    _Flag("max-tools-per-request", int, 512, "entries of a chat request's tools array (0: no limit)"),
    _Flag(
        "shutdown-grace-period-secs",
        float,
        30.0,
        "on SIGTERM, how long in-flight requests may take to finish before they are cancelled",
    ),
    _Flag("api-key", str, (), "data-plane API key clients must send (repeatable)", many=True),
    _Flag("admin-api-key", str, (), "admin-plane API key (repeatable)", many=True),
    _Flag("mcp-registry", str, None, "MCP registry file (default: $XDG_STATE_HOME/smg/mcp.db)"),
    _Flag("mcp-config-path", str, None, "YAML file of MCP servers in SMG's shape, loaded at start"),
    _Flag("mcp-max-iterations", int, 10, "model calls per tool loop"),
    _Flag("mcp-max-tool-calls", int, 64, "MCP tool calls per tool loop"),
    _Flag("mcp-loop-timeout-secs", float, 300.0, "wall-clock budget of one tool loop"),
    _Flag(
        "mcp-max-repeated-calls", int, 3, "the Nth request of an identical tool call stops the loop (>= 2)"
    ),
    _Flag("mcp-tools-ttl-secs", float, 300.0, "age after which a server's cached tool list is refreshed"),
    _Flag(
        "mcp-allowed-hosts",
        str,
        (),
        "hosts MCP server URLs may name: names, *.suffix, IPs or CIDRs (default: any host)",
        many=True,
    ),
    _Flag(
        "mcp-max-tool-output-bytes",
        int,
        262_144,
        "bytes of one tool result fed back to the model; the rest is cut with a marker (0: no limit)",
    ),
    _Flag("log-level", str, "info", "log level", choices=LOG_LEVELS),
    _Flag("log-json", None, False, "log one JSON object per line"),
    _Flag("enable-trace", None, False, "export OpenTelemetry traces over OTLP/gRPC"),
    _Flag("otlp-traces-endpoint", str, "localhost:4317", "OTLP/gRPC collector the traces go to (host:port)"),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's signature; never returns
        raise ConfigError(message)


def flag_table() -> tuple[tuple[str, str, str, Any], ...]:
    """(flag, env var, help, default) for every gateway flag; the configuration doc is checked against it."""
    return tuple((f"--{f.name}", f.env, f.help, f.default) for f in _FLAGS)


def add_gateway_flags(parser: argparse.ArgumentParser) -> None:
    """Declare every gateway flag on ``parser`` (defaults are applied later by `settings_from_args`)."""
    for f in _FLAGS:
        if f.kind is None:
            parser.add_argument(f"--{f.name}", action="store_true", default=None, help=f.help)
        else:
            parser.add_argument(
                f"--{f.name}",
                nargs="+" if f.many else None,
                action="extend" if f.many else "store",
                default=None,
                help=f"{f.help} (env {f.env})",
                metavar=f.dest.upper(),
            )


def _from_env(f: _Flag, raw: str) -> Any:
    if f.kind is None:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{f.env}: expected a boolean, got {raw!r}")
    if f.many:
        return [part for part in raw.replace(",", " ").split() if part]
    return raw


def _convert(f: _Flag, value: Any) -> Any:
    assert f.kind is not None
    try:
        if f.many:
            return tuple(f.kind(v) for v in value)
        return f.kind(value)
    except ValueError:
        raise ConfigError(f"--{f.name}: invalid value {value!r}") from None


def _resolve(ns: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in _FLAGS:
        value = getattr(ns, f.dest, None)
        if value is None and f.env in env:
            value = _from_env(f, env[f.env])
        if value is None:
            out[f.dest] = f.default
            continue
        if f.kind is not None:
            value = _convert(f, value)
        if f.choices is not None and value not in f.choices:
            raise ConfigError(f"--{f.name}: {value!r} is not one of {', '.join(f.choices)}")
        out[f.dest] = value
    return out


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _validate_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  # urlsplit validates the port only when it is read
    except ValueError:
        raise ConfigError(f"--worker-urls: invalid port in {redact_url(url)!r}") from None
    valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    _check(valid, f"--worker-urls: invalid URL {redact_url(url)!r}")
    # A worker URL is shown in logs, error messages and metric labels: it must carry no secret.
    _check(
        parts.username is None and parts.password is None,
        f"--worker-urls: {parts.hostname}: credentials in the URL are not allowed; use --worker-api-key",
    )
    _check(
        not parts.query and not parts.fragment,
        f"--worker-urls: {parts.hostname}: a worker URL takes no query or fragment",
    )
    return url.rstrip("/")


def settings_from_namespace(ns: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Build and validate `Settings` from parsed flags plus ``SMG_*`` variables.

    Raises ConfigError with a one-line message naming the flag when a value is out of range.
    """
    v = _resolve(ns, env)
    _check(0 <= v["port"] <= 65535, "--port: must be between 0 and 65535")
    _check(0 <= v["prometheus_port"] <= 65535, "--prometheus-port: must be between 0 and 65535")
    _check(v["retry_max_retries"] >= 1, "--retry-max-retries: must be at least 1")
    _check(v["retry_initial_backoff_ms"] >= 0, "--retry-initial-backoff-ms: must be >= 0")
    _check(v["retry_max_backoff_ms"] >= 0, "--retry-max-backoff-ms: must be >= 0")
    _check(1.0 <= v["retry_backoff_multiplier"] < 1e6, "--retry-backoff-multiplier: must be finite and >= 1")
    _check(0.0 <= v["retry_jitter_factor"] <= 1.0, "--retry-jitter-factor: must be between 0 and 1")
    _check(v["cb_failure_threshold"] >= 1, "--cb-failure-threshold: must be at least 1")
    _check(v["cb_success_threshold"] >= 1, "--cb-success-threshold: must be at least 1")
    _check(v["cb_timeout_duration_secs"] > 0, "--cb-timeout-duration-secs: must be > 0")
    _check(v["health_check_interval_secs"] > 0, "--health-check-interval-secs: must be > 0")
    _check(v["health_check_timeout_secs"] > 0, "--health-check-timeout-secs: must be > 0")
    _check(v["health_failure_threshold"] >= 1, "--health-failure-threshold: must be at least 1")
    _check(v["health_success_threshold"] >= 1, "--health-success-threshold: must be at least 1")
    _check(v["health_check_endpoint"].startswith("/"), "--health-check-endpoint: must start with /")
    _check(v["max_concurrent_requests"] >= -1, "--max-concurrent-requests: must be -1, 0 or positive")
    _check(v["queue_size"] >= 0, "--queue-size: must be >= 0")
    _check(v["queue_timeout_secs"] > 0, "--queue-timeout-secs: must be > 0")
    _check(v["request_timeout_secs"] > 0, "--request-timeout-secs: must be > 0")
    _check(v["max_payload_size"] >= 1, "--max-payload-size: must be at least 1")
    _check(v["max_request_head_bytes"] > 0, "--max-request-head-bytes: must be > 0")
    _check(v["request_head_timeout_secs"] > 0, "--request-head-timeout-secs: must be > 0")
    _check(v["max_messages_per_request"] >= 0, "--max-messages-per-request: must be >= 0")
    _check(v["max_tools_per_request"] >= 0, "--max-tools-per-request: must be >= 0")
    _check(v["shutdown_grace_period_secs"] >= 0, "--shutdown-grace-period-secs: must be >= 0")
    _check(v["mcp_max_tool_output_bytes"] >= 0, "--mcp-max-tool-output-bytes: must be >= 0")
    for name in ("api_key", "admin_api_key"):
        _check(all(k.strip() for k in v[name]), f"--{name.replace('_', '-')}: keys must not be empty")
    _check(v["mcp_max_iterations"] >= 1, "--mcp-max-iterations: must be at least 1")
    _check(v["mcp_max_tool_calls"] >= 1, "--mcp-max-tool-calls: must be at least 1")
    _check(v["mcp_loop_timeout_secs"] > 0, "--mcp-loop-timeout-secs: must be > 0")
    _check(v["mcp_max_repeated_calls"] >= 2, "--mcp-max-repeated-calls: must be at least 2")
    _check(v["mcp_tools_ttl_secs"] > 0, "--mcp-tools-ttl-secs: must be > 0")
    _check(bool(v["otlp_traces_endpoint"].strip()), "--otlp-traces-endpoint: must not be empty")
    _check(v["worker_file"] is None or bool(v["worker_file"].strip()), "--worker-file: must not be empty")
    urls = tuple(_validate_url(u) for u in v["worker_urls"])
    try:
        allowed_hosts = HostAllowList(v["mcp_allowed_hosts"]).patterns
    except ValueError as exc:
        raise ConfigError(f"--mcp-allowed-hosts: {exc}") from None
    return Settings(
        server=ServerSettings(
            host=v["host"],
            port=v["port"],
            prometheus_host=v["prometheus_host"],
            prometheus_port=v["prometheus_port"],
            max_payload_size=v["max_payload_size"],
            max_request_head_bytes=v["max_request_head_bytes"],
            request_head_timeout_secs=v["request_head_timeout_secs"],
            shutdown_grace_period_secs=v["shutdown_grace_period_secs"],
            log_level=v["log_level"],
            log_json=v["log_json"],
        ),
        workers=WorkerSettings(
            urls=urls,
            policy=v["policy"],
            api_key=v["worker_api_key"],
            request_timeout_secs=v["request_timeout_secs"],
            file_path=v["worker_file"],
        ),
        retry=RetrySettings(
            max_retries=v["retry_max_retries"],
            initial_backoff_ms=v["retry_initial_backoff_ms"],
            max_backoff_ms=v["retry_max_backoff_ms"],
            backoff_multiplier=v["retry_backoff_multiplier"],
            jitter_factor=v["retry_jitter_factor"],
            enabled=not v["disable_retries"],
        ),
        breaker=BreakerSettings(
            failure_threshold=v["cb_failure_threshold"],
            success_threshold=v["cb_success_threshold"],
            timeout_secs=v["cb_timeout_duration_secs"],
            enabled=not v["disable_circuit_breaker"],
        ),
        health=HealthSettings(
            interval_secs=v["health_check_interval_secs"],
            timeout_secs=v["health_check_timeout_secs"],
            failure_threshold=v["health_failure_threshold"],
            success_threshold=v["health_success_threshold"],
            endpoint=v["health_check_endpoint"],
            enabled=not v["disable_health_check"],
        ),
        admission=AdmissionSettings(
            max_concurrent_requests=v["max_concurrent_requests"],
            queue_size=v["queue_size"],
            queue_timeout_secs=v["queue_timeout_secs"],
        ),
        limits=RequestLimits(
            max_messages=v["max_messages_per_request"], max_tools=v["max_tools_per_request"]
        ),
        auth=AuthSettings(api_keys=v["api_key"], admin_api_keys=v["admin_api_key"]),
        mcp=McpSettings(
            registry_path=v["mcp_registry"] or str(default_registry_path(env)),
            config_path=v["mcp_config_path"],
            max_iterations=v["mcp_max_iterations"],
            max_tool_calls=v["mcp_max_tool_calls"],
            loop_timeout_secs=v["mcp_loop_timeout_secs"],
            max_repeated_calls=v["mcp_max_repeated_calls"],
            tools_ttl_secs=v["mcp_tools_ttl_secs"],
            allowed_hosts=allowed_hosts,
            max_tool_output_bytes=v["mcp_max_tool_output_bytes"],
        ),
        trace=TraceSettings(enabled=v["enable_trace"], otlp_endpoint=v["otlp_traces_endpoint"]),
    )


def parse_settings(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """Parse gateway flags (``smg launch`` arguments) into `Settings`. Raises ConfigError."""
    parser = _Parser(prog="smg launch", add_help=False, allow_abbrev=False)
    add_gateway_flags(parser)
    ns = parser.parse_args(list(argv))
    return settings_from_namespace(ns, os.environ if env is None else env)
