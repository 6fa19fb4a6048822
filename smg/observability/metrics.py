"""Every smg_* metric, on an injected registry. Nothing outside smg/observability imports
prometheus_client. Label values come from bounded, server-controlled sets (`Bounded`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# SMG's default duration buckets (seconds), as SMG's Rust recorder sets them for every duration, TTFT
# and TPOT histogram.
DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 45.0,
    60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 480.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0,
)  # fmt: skip


# How a gauge's values of several serving processes combine into the one series /metrics shows
# (prometheus_client's multiprocess modes, docs/monitoring.md); "live": a dead process's value is dropped.
# Ignored in a single process.
LIVESUM: dict[str, Any] = {"multiprocess_mode": "livesum"}  # amounts: in flight, queued
LIVEMAX: dict[str, Any] = {"multiprocess_mode": "livemax"}  # the worst state, the largest pool
LIVEMIN: dict[str, Any] = {"multiprocess_mode": "livemin"}  # up only while up in every process


class Bounded:
    """Caps the distinct values of one label: past ``limit`` new values become ``other``."""

    def __init__(self, limit: int = 100) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value

    def forget(self, value: str) -> None:
        """Free the place of ``value`` (its series are gone), so the cap counts values in use."""
        self._seen.discard(value)


class ModelLabel:
    """The ``model`` label: only names some registered worker serves, so a client naming models nobody
    serves adds no series. The first ``limit`` served names keep their own value, later ones are
    ``other``; a name no worker serves maps to None (the caller records nothing for it).

    ``served`` says whether a registered worker serves a name (workers added at run time, by any
    source, included); it is asked only for a name not labelled before, so a known name costs one
    dict lookup."""

    def __init__(self, limit: int = 100) -> None:
        self._limit = limit
        self._values: dict[str, str] = {}  # served name -> its label value (itself or "other")
        self._own = 0
        self._served: Callable[[str], bool] = lambda _model: False

    def served_by(self, served: Callable[[str], bool]) -> None:
        """Take served names from ``served`` (the worker registry); until then no name is served."""
        self._served = served

    def __call__(self, model: str) -> str | None:
        value = self._values.get(model)
        if value is not None:
            return value
        if not self._served(model):
            return None
        if self._own < self._limit:
            self._own += 1
            value = model
        else:
            value = "other"
        self._values[model] = value
        return value


class Metrics:
    """The metric families of all six layers: HTTP, router, worker, discovery, MCP, storage.

    Counters and histograms carry no ``_created`` series: prometheus_client's switch for them is
    process-wide and read when a registry is collected, so building a `Metrics` turns it off for every
    rendering in the process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        b = DURATION_BUCKETS
        # Layer 1: HTTP
        self.http_requests = Counter(
            "smg_http_requests", "Total HTTP requests", ["method", "path"], registry=r
        )
        self.http_duration = Histogram(
            "smg_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "path"],
            buckets=b,
            registry=r,
        )
        self.http_responses = Counter(
            "smg_http_responses", "HTTP responses", ["path", "status_code", "error_code"], registry=r
        )
        self.http_connections = Gauge(
            "smg_http_connections_active", "HTTP requests in progress", registry=r, **LIVESUM
        )
        self.http_rate_limit = Counter(
            "smg_http_rate_limit", "Admission and key rate decisions", ["decision"], registry=r
        )
        self.http_key_rate_limit = Counter(
            "smg_http_key_rate_limit", "Requests refused over their key's rpm", ["key"], registry=r
        )
        self.admission_queue_depth = Gauge(
            "smg_http_admission_queue_depth", "Requests waiting", registry=r, **LIVESUM
        )
        self.admission_inflight = Gauge(
            "smg_http_admission_inflight", "Requests holding a permit", registry=r, **LIVESUM
        )
        # Layer 2: router
        router_labels = ["router_type", "model", "endpoint", "streaming"]
        self.router_requests = Counter("smg_router_requests", "Routed requests", router_labels, registry=r)
        self.router_duration = Histogram(
            "smg_router_request_duration_seconds",
            "Routed request duration",
            router_labels,
            buckets=b,
            registry=r,
        )
        self.router_errors = Counter(
            "smg_router_request_errors", "Routed request errors", [*router_labels, "error_type"], registry=r
        )
        self.router_ttft = Histogram(
            "smg_router_ttft_seconds", "Time to first token (streams)", ["model"], buckets=b, registry=r
        )
        self.router_tpot = Histogram(
            "smg_router_tpot_seconds", "Time per output token after the first (streams)", ["model"],
            buckets=b, registry=r,
        )  # fmt: skip
        self.router_tokens = Counter(
            "smg_router_tokens", "Tokens by type (input/output), from usage", ["model", "type"], registry=r
        )
        self.router_stage = Histogram(
            "smg_router_stage_duration_seconds", "Pipeline stage duration", ["stage"], buckets=b, registry=r
        )
        # Layer 3: workers
        worker, transition, selection = ("worker",), ("worker", "from", "to"), ("policy", "worker")
        self.worker_health = Gauge(
            "smg_worker_health", "1 healthy, 0 unhealthy", worker, registry=r, **LIVEMIN
        )
        self.worker_active = Gauge(
            "smg_worker_requests_active", "Requests in flight", worker, registry=r, **LIVESUM
        )
        self.worker_cb_state = Gauge(
            "smg_worker_cb_state",
            "Breaker state: 0 closed, 1 open, 2 half_open",
            worker,
            registry=r,
            **LIVEMAX,
        )
        self.worker_cb_transitions = Counter(
            "smg_worker_cb_transitions", "Breaker transitions", transition, registry=r
        )
        self.worker_retries = Counter("smg_worker_retries", "Retries of worker attempts", registry=r)
        self.worker_retries_exhausted = Counter(
            "smg_worker_retries_exhausted", "Requests that ran out of attempts", registry=r
        )
        self.worker_retry_backoff = Histogram(
            "smg_worker_retry_backoff_seconds", "Backoff before a retry", buckets=b, registry=r
        )
        self.worker_pool_size = Gauge("smg_worker_pool_size", "Registered workers", registry=r, **LIVEMAX)
        self.worker_selection = Counter("smg_worker_selection", "Worker selections", selection, registry=r)
        self._per_worker: tuple[tuple[Gauge | Counter, tuple[str, ...]], ...] = (
            (self.worker_health, worker),
            (self.worker_active, worker),
            (self.worker_cb_state, worker),
            (self.worker_cb_transitions, transition),
            (self.worker_selection, selection),
        )
        self.worker_errors = Counter(
            "smg_worker_errors", "Failed worker attempts", ["error_type"], registry=r
        )
        # Layer 4: discovery
        self.discovery_registrations = Counter(
            "smg_discovery_registrations", "Worker pool changes", ["source", "result"], registry=r
        )
        # Layer 5: MCP
        self.mcp_tool_calls = Counter(
            "smg_mcp_tool_calls",
            "MCP tool calls; result is success or error, outcome the finer status, caller loop, "
            "mcp_client or admin",
            ["server", "tool_name", "result", "outcome", "caller"],
            registry=r,
        )
        self.mcp_tool_duration = Histogram(
            "smg_mcp_tool_duration_seconds",
            "MCP tool call duration",
            ["server", "tool_name", "caller"],
            buckets=b,
            registry=r,
        )
        self.mcp_servers_active = Gauge(
            "smg_mcp_servers_active", "MCP servers with a live session", registry=r, **LIVEMIN
        )
        self.mcp_server_state = Gauge(
            "smg_mcp_server_connected",
            "1 while the MCP server's session is up",
            ["server"],
            registry=r,
            **LIVEMIN,
        )
        self.mcp_iterations = Counter(
            "smg_mcp_tool_iterations", "Model calls made by tool loops", ["model"], registry=r
        )
        self.mcp_loop_stops = Counter(
            "smg_mcp_loop_stops", "Tool loops ended, by stop reason", ["reason"], registry=r
        )
        self.mcp_reconnects = Counter(
            "smg_mcp_session_reconnects", "MCP session re-establishments", ["server"], registry=r
        )
        self.mcp_stdio_restarts = Counter(
            "smg_mcp_stdio_restarts", "stdio MCP children restarted", ["server"], registry=r
        )
        self.mcp_tool_refreshes = Counter(
            "smg_mcp_tool_list_refreshes", "MCP tool-list refreshes", ["server", "reason"], registry=r
        )
        self.mcp_cb_state = Gauge(
            "smg_mcp_server_cb_state",
            "MCP server breaker: 0 closed, 1 open, 2 half_open",
            ["server"],
            registry=r,
            **LIVEMAX,
        )
        self.mcp_approvals = Counter(
            "smg_mcp_approvals", "MCP call approvals of the Responses API", ["decision"], registry=r
        )
        # Layer 6: storage
        self.db_operations = Counter(
            "smg_db_operations", "Storage operations", ["storage_type", "operation", "result"], registry=r
        )
        self.db_duration = Histogram(
            "smg_db_operation_duration_seconds",
            "Storage operation duration",
            ["storage_type", "operation"],
            buckets=b,
            registry=r,
        )
        self.worker_label = Bounded()
        self.server_label = Bounded()
        self.tool_label = Bounded(500)
        self.path_label = Bounded(64)
        self.model_label = ModelLabel()
        self.error_label = Bounded(64)
        self.key_label = Bounded(1000)  # names of stored keys: set by the operator, never by a client

    def remove_worker(self, label: str) -> None:
        """Remove every series labelled ``worker=label``, of every family that has a ``worker`` label."""
        for family, names in self._per_worker:
            for collected in family.collect():
                for sample in collected.samples:
                    if sample.labels.get("worker") == label:
                        family.remove(*(sample.labels[name] for name in names))

    def render(self) -> bytes:
        """Prometheus text exposition of the registry."""
        return generate_latest(self.registry)
