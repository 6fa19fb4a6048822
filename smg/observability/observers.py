"""Hook implementations that feed `Metrics`. Each hook is guarded: telemetry never breaks a request."""

from __future__ import annotations

from smg.observability.guard import Children as _Children
from smg.observability.guard import guarded
from smg.observability.metrics import Metrics
from smg.observability.worker_metrics import WorkerMetrics as WorkerMetrics

# The methods of RFC 9110 and PATCH (RFC 5789) keep their name as the `method` label; any other token a
# client sends (WebDAV's PROPFIND, made-up ones) is `other`. The label is recorded before authentication.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


class HttpMetrics:
    """`smg.api.middleware.HttpObserver`, the admission's and the key ring's observer, backed by
    Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._requests = _Children(metrics.http_requests)
        self._duration = _Children(metrics.http_duration)
        self._responses = _Children(metrics.http_responses)
        self._decisions = _Children(metrics.http_rate_limit)
        self._keys = _Children(metrics.http_key_rate_limit)

    @guarded
    def on_start(self) -> None:
        self._m.http_connections.inc()

    @guarded
    def on_end(self, *, method: str, path: str, status: int, error_code: str, duration: float) -> None:
        m = self._m
        path = m.path_label(path)
        if method not in HTTP_METHODS:
            method = "other"
        m.http_connections.dec()
        self._requests(method, path).inc()
        self._duration(method, path).observe(duration)
        self._responses(path, str(status), error_code).inc()

    @guarded
    def on_admission(self, decision: str) -> None:
        self._decisions(decision).inc()

    @guarded
    def on_rate_limited(self, key: str) -> None:
        """`smg.keys.ring.KeyObserver`: a request over its key's ``rpm`` (``key``: the key's name, never
        the key)."""
        self._decisions("rpm_rejected").inc()
        self._keys(self._m.key_label(key)).inc()

    @guarded
    def on_queue(self, *, queued: int, inflight: int) -> None:
        self._m.admission_queue_depth.set(queued)
        self._m.admission_inflight.set(inflight)


class RouterMetrics:
    """`smg.routing.chat.RouterObserver` backed by Prometheus metrics (HTTP router; ``endpoint`` is the
    label of the routes it records: ``chat`` or ``responses``)."""

    def __init__(self, metrics: Metrics, *, endpoint: str = "chat") -> None:
        self._m = metrics
        self._endpoint = endpoint
        self._requests = _Children(metrics.router_requests)
        self._duration = _Children(metrics.router_duration)
        self._stages = _Children(metrics.router_stage)
        self._ttft = _Children(metrics.router_ttft)
        self._tpot = _Children(metrics.router_tpot)
        self._tokens = _Children(metrics.router_tokens)

    @guarded
    def on_routed(self, model: str, *, streaming: bool, duration: float, error_code: str | None) -> None:
        m = self._m
        model_label = m.model_label(model)
        if model_label is None or error_code == "model_not_found":  # no worker serves it: not routed
            return
        labels = ("http", model_label, self._endpoint, "true" if streaming else "false")
        self._requests(*labels).inc()
        self._duration(*labels).observe(duration)
        if error_code is not None:
            m.router_errors.labels(*labels, m.error_label(error_code)).inc()

    @guarded
    def on_generation(
        self, model: str, *, ttft: float | None, tpot: float | None, tokens: tuple[int, int] | None
    ) -> None:
        m = self._m
        model_label = m.model_label(model)
        if model_label is None:  # the worker that answered was removed since: keep labels bounded
            return
        if ttft is not None:
            self._ttft(model_label).observe(ttft)
        if tpot is not None:
            self._tpot(model_label).observe(tpot)
        if tokens is not None:
            self._tokens(model_label, "input").inc(tokens[0])
            self._tokens(model_label, "output").inc(tokens[1])

    @guarded
    def on_stage(self, stage: str, duration: float) -> None:
        self._stages(stage).observe(duration)


_BREAKER_VALUES = {"closed": 0, "open": 1, "half_open": 2}


def tool_result(status: str) -> str:
    """The ``result`` label of a tool call, in SMG's values: ``success`` or ``error`` (the finer
    ``status`` is the ``outcome`` label)."""
    return "success" if status == "ok" else "error"


class McpMetrics:
    """`smg.mcp.hooks.McpObserver` and `smg.routing.execution.LoopObserver` backed by metrics.

    Tool calls are counted once, where the MCP runtime makes them (the loop's own ``on_tool_call`` is
    not counted again)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._connected: set[str] = set()

    @guarded
    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        m = self._m
        s, t = m.server_label(server), m.tool_label(tool)
        m.mcp_tool_calls.labels(s, t, tool_result(status), status, caller).inc()
        m.mcp_tool_duration.labels(s, t, caller).observe(duration)

    @guarded
    def on_reconnect(self, server: str) -> None:
        self._m.mcp_reconnects.labels(self._m.server_label(server)).inc()

    @guarded
    def on_stdio_restart(self, server: str) -> None:
        self._m.mcp_stdio_restarts.labels(self._m.server_label(server)).inc()

    @guarded
    def on_tools_refreshed(self, server: str, reason: str) -> None:
        self._m.mcp_tool_refreshes.labels(self._m.server_label(server), reason).inc()

    @guarded
    def on_server_state(self, server: str, state: str) -> None:
        if state == "connected":
            self._connected.add(server)
        else:
            self._connected.discard(server)
        self._m.mcp_server_state.labels(self._m.server_label(server)).set(1 if state == "connected" else 0)
        self._m.mcp_servers_active.set(len(self._connected))

    @guarded
    def on_breaker(self, server: str, state: str) -> None:
        self._m.mcp_cb_state.labels(self._m.server_label(server)).set(_BREAKER_VALUES.get(state, 0))


class LoopMetrics:
    """`smg.routing.execution.LoopObserver` backed by metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    @guarded
    def on_iteration(self, model: str, *, iteration: int) -> None:
        label = self._m.model_label(model)
        if label is not None:
            self._m.mcp_iterations.labels(label).inc()

    @guarded
    def on_tool_call(self, server: str, tool: str, *, status: str, duration: float) -> None:
        # Counted by McpMetrics where the call is made; here only the loop's tool_exec stage.
        self._m.router_stage.labels("tool_exec").observe(duration)

    @guarded
    def on_stop(self, model: str, reason: str, *, iterations: int) -> None:
        self._m.mcp_loop_stops.labels(reason).inc()


class ApprovalMetrics:
    """`smg.responses.approval.ApprovalObserver` backed by metrics (``decision``: requested, approved,
    denied)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    @guarded
    def on_approval(self, decision: str) -> None:
        self._m.mcp_approvals.labels(decision).inc()


class StorageMetrics:
    """`smg.mcp.registry.StorageObserver` backed by metrics (``storage_type`` names the backend)."""

    def __init__(self, metrics: Metrics, *, storage_type: str = "sqlite") -> None:
        self._m = metrics
        self._type = storage_type

    @guarded
    def on_operation(self, operation: str, result: str, duration: float) -> None:
        m = self._m
        m.db_operations.labels(self._type, operation, m.error_label(result)).inc()
        m.db_duration.labels(self._type, operation).observe(duration)
