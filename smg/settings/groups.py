"""The configuration model: one frozen group per component, one declaration per setting.

Each field states its type, default, help and bounds once; its `Flag` names the flag, the ``SMG_*``
variable and the config file key it is read from. A group validates however it is built (flags, file,
``Settings(...)``, ``dataclasses.replace``) and raises pydantic's ``ValidationError`` (a ValueError)
for a bad value. Components receive the group they need (``settings.retry``, ``settings.mcp``...).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, get_args

from pydantic import Field
from pydantic.dataclasses import dataclass

from smg.settings.fields import (
    GROUP_CONFIG,
    ApiKeys,
    DatabaseUrl,
    FileSection,
    Flag,
    HostPatterns,
    Internal,
    NotBlank,
    Switch,
)
from smg.settings.workers import BreakerSettings, HealthSettings, RetrySettings, WorkerSettings

LogLevel = Literal["debug", "info", "warn", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
MCP_SERVERS_KEY = "mcp_servers"  # the config file's list of MCP servers (parsed by smg.mcp at start)


@dataclass(frozen=True, config=GROUP_CONFIG)
class ServerSettings:
    """Listeners, request heads and bodies, shutdown, logging."""

    host: Annotated[str, Flag("host")] = Field(default="0.0.0.0", description="address the gateway binds")
    port: Annotated[int, Flag("port")] = Field(
        default=30000, ge=0, le=65535, description="port the gateway binds (0: a free port)"
    )
    prometheus_host: Annotated[str | None, Flag("prometheus-host")] = Field(
        default=None, description="address of the metrics listener (default: --host's family)"
    )
    prometheus_port: Annotated[int, Flag("prometheus-port")] = Field(
        default=29000, ge=0, le=65535, description="port of the metrics listener (0: a free port)"
    )
    max_payload_size: Annotated[int, Flag("max-payload-size")] = Field(
        default=536_870_912, ge=1, description="largest request body in bytes"
    )
    max_request_head_bytes: Annotated[int, Flag("max-request-head-bytes")] = Field(
        default=65_536, gt=0, description="largest request line plus headers in bytes (431 above)"
    )
    request_head_timeout_secs: Annotated[float, Flag("request-head-timeout-secs")] = Field(
        default=10.0, gt=0, description="time a connection has to send a complete request head"
    )
    database_url: Annotated[DatabaseUrl | None, Flag("database-url")] = Field(
        default=None,
        repr=False,
        description="the gateway's database (MCP registry, keys, stored responses): a SQLite file path or "
        "sqlite:///path (default: the --mcp-registry file), or postgresql://... shared by replicas",
    )
    shutdown_grace_period_secs: Annotated[float, Flag("shutdown-grace-period-secs")] = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, how long in-flight requests may take to finish before they are cancelled",
    )
    processes: Annotated[int, Flag("processes")] = Field(
        default=1, ge=0, le=1024, description="serving processes sharing the port (0: one per core)"
    )
    log_level: Annotated[LogLevel, Flag("log-level")] = Field(default="info", description="log level")
    log_json: Annotated[Switch, Flag("log-json")] = Field(
        default=False, description="log one JSON object per line"
    )

    @property
    def process_count(self) -> int:
        """Serving processes in force: ``processes``, or the host's core count for 0."""
        return self.processes or (os.cpu_count() or 1)

    @property
    def metrics_host(self) -> str:
        if self.prometheus_host is not None:
            return self.prometheus_host
        return "::" if ":" in self.host else "0.0.0.0"


@dataclass(frozen=True, config=GROUP_CONFIG)
class AdmissionSettings:
    """Admission control: a bound on concurrent requests, and a queue in front of it."""

    max_concurrent_requests: Annotated[int, Flag("max-concurrent-requests")] = Field(
        default=-1, ge=-1, description="concurrent requests (-1: 1024 per core, >= 4096; 0: off)"
    )
    queue_size: Annotated[int, Flag("queue-size")] = Field(
        default=100, ge=0, description="requests that may wait for a permit (0: reject at once)"
    )
    queue_timeout_secs: Annotated[float, Flag("queue-timeout-secs")] = Field(
        default=60.0, gt=0, description="longest wait for a permit"
    )

    @property
    def limit(self) -> int | None:
        """Concurrency bound in force: None when disabled (0); derived from the host for -1."""
        if self.max_concurrent_requests == 0:
            return None
        if self.max_concurrent_requests < 0:
            return max(4096, 1024 * (os.cpu_count() or 1))
        return self.max_concurrent_requests


@dataclass(frozen=True, config=GROUP_CONFIG)
class RequestLimits:
    """Bounds on one chat request, checked before anything else happens (0 in a field: no bound)."""

    max_messages: Annotated[int, Flag("max-messages-per-request")] = Field(
        default=4096, ge=0, description="messages a chat request may carry (0: no limit)"
    )
    max_tools: Annotated[int, Flag("max-tools-per-request")] = Field(
        default=512, ge=0, description="entries of a chat request's tools array (0: no limit)"
    )


@dataclass(frozen=True, config=GROUP_CONFIG)
class AuthSettings:
    """Keys of the data plane and of the admin plane."""

    api_keys: Annotated[ApiKeys, Flag("api-key")] = Field(
        default=(), repr=False, description="data-plane API key clients must send (repeatable)"
    )
    admin_api_keys: Annotated[ApiKeys, Flag("admin-api-key")] = Field(
        default=(), repr=False, description="admin-plane API key (repeatable)"
    )


@dataclass(frozen=True, config=GROUP_CONFIG)
class ResponsesSettings:
    """Stored and background responses of the Responses API."""

    ttl_secs: Annotated[int, Flag("responses-ttl-secs")] = Field(
        default=2_592_000, ge=1, description="age after which a stored response and its input items are gone"
    )
    max_stored: Annotated[int, Flag("responses-max-stored")] = Field(
        default=10_000, ge=1, description="stored responses kept; past it the oldest go at each write"
    )
    max_background: Annotated[int, Flag("responses-max-background")] = Field(
        default=64, ge=1, description="background responses running at once (429 past it)"
    )


@dataclass(frozen=True, config=GROUP_CONFIG)
class TraceSettings:
    """OpenTelemetry traces."""

    enabled: Annotated[Switch, Flag("enable-trace")] = Field(
        default=False, description="export OpenTelemetry traces over OTLP/gRPC"
    )
    otlp_endpoint: Annotated[NotBlank, Flag("otlp-traces-endpoint")] = Field(
        default="localhost:4317", description="OTLP/gRPC collector the traces go to (host:port)"
    )


@dataclass(frozen=True, config=GROUP_CONFIG)
class McpSettings:
    """MCP servers (registry file, YAML, the config file's list) and the tool loop's budgets."""

    registry_path: Annotated[str | None, Flag("mcp-registry")] = Field(
        default=None, description="MCP registry file (default: $XDG_STATE_HOME/smg/mcp.db)"
    )  # None: a private registry that lives as long as the gateway (tests); the command line always sets one
    config_path: Annotated[str | None, Flag("mcp-config-path")] = Field(
        default=None, description="YAML file of MCP servers in SMG's shape, loaded at start"
    )
    servers_file: Annotated[
        str | None,
        FileSection(
            MCP_SERVERS_KEY,
            "MCP servers, each in the shape of a --mcp-config-path server entry",
            by_path=True,
        ),
    ] = None
    max_iterations: Annotated[int, Flag("mcp-max-iterations")] = Field(
        default=10, ge=1, description="model calls per tool loop"
    )
    max_tool_calls: Annotated[int, Flag("mcp-max-tool-calls")] = Field(
        default=64, ge=1, description="MCP tool calls per tool loop"
    )
    loop_timeout_secs: Annotated[float, Flag("mcp-loop-timeout-secs")] = Field(
        default=300.0, gt=0, description="wall-clock budget of one tool loop"
    )
    max_repeated_calls: Annotated[int, Flag("mcp-max-repeated-calls")] = Field(
        default=3, ge=2, description="the Nth request of an identical tool call stops the loop (>= 2)"
    )
    recent_loops: Annotated[int, Flag("recent-loops")] = Field(
        default=100, ge=0, description="finished tool loops the admin API's GET /loops/recent keeps (0: none)"
    )
    tools_ttl_secs: Annotated[float, Flag("mcp-tools-ttl-secs")] = Field(
        default=300.0, gt=0, description="age after which a server's cached tool list is refreshed"
    )
    registry_poll_secs: Annotated[float, Internal("fixed at 2 s in production (documented)")] = Field(
        default=2.0, gt=0, description="how often the registry file is checked for changes"
    )
    allowed_hosts: Annotated[HostPatterns, Flag("mcp-allowed-hosts")] = Field(
        default=(),
        description="hosts MCP server URLs may name: names, *.suffix, IPs or CIDRs (default: any host)",
    )
    request_servers: Annotated[Switch, Flag("mcp-request-servers")] = Field(
        default=False,
        description="let a Responses request define its own MCP server (an mcp tool's server_url) on a "
        "host --mcp-allowed-hosts allows, connected for that request only",
    )
    max_tool_output_bytes: Annotated[int, Flag("mcp-max-tool-output-bytes")] = Field(
        default=262_144,
        ge=0,
        description="bytes of one tool result fed back to the model; the rest is cut with a marker "
        "(0: no limit)",
    )


@dataclass(frozen=True, config=GROUP_CONFIG)
class Settings:
    """Every group. Frozen; validates however it is built."""

    server: ServerSettings = ServerSettings()
    workers: WorkerSettings = WorkerSettings()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    health: HealthSettings = HealthSettings()
    admission: AdmissionSettings = AdmissionSettings()
    limits: RequestLimits = RequestLimits()
    auth: AuthSettings = AuthSettings()
    mcp: McpSettings = McpSettings()
    responses: ResponsesSettings = ResponsesSettings()
    trace: TraceSettings = TraceSettings()
