"""Hook implementations that feed `Metrics`. Each hook is guarded: telemetry never breaks a request.

The observers every request runs (`HttpMetrics`, `RouterMetrics`, `WorkerMetrics`) live in modules of
their own and are re-exported here.
"""

from __future__ import annotations

from smg.observability.guard import guarded
from smg.observability.metrics import Metrics
from smg.observability.request_metrics import HTTP_METHODS as HTTP_METHODS
from smg.observability.request_metrics import HttpMetrics as HttpMetrics
from smg.observability.request_metrics import RouterMetrics as RouterMetrics
from smg.observability.worker_metrics import WorkerMetrics as WorkerMetrics

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
