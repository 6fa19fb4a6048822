"""Plain values the MCP runtime hands to the rest of smg (no mcp SDK types, no OpenAI types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ToolStatus = Literal["ok", "error", "timeout", "unavailable", "breaker_open", "invalid_arguments"]
ServerState = Literal["connecting", "connected", "reconnecting", "failed", "closed"]
Caller = Literal["loop", "mcp_client", "admin"]
"""Who made a tool call: a chat or Responses tool loop, an MCP client of the gateway's ``/mcp``
endpoint, or the admin API. Metrics and spans carry it (a closed set: a bounded label)."""


class Progress(Protocol):
    """Receives the server's progress notifications of one call."""

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None: ...


@dataclass(frozen=True)
class ToolInfo:
    """One tool of one MCP server, as listed by it. Hints come from the tool's MCP annotations;
    ``annotations`` keeps them (and ``title``) as the server sent them, for the gateway's MCP endpoint."""

    server: str
    name: str
    description: str | None
    input_schema: dict[str, Any]
    read_only: bool = False
    idempotent: bool = False
    destructive: bool = False
    title: str | None = None
    annotations: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def retry_safe(self) -> bool:
        """A call may be replayed after an outcome-unknown failure only when the server says so."""
        return self.read_only or self.idempotent


@dataclass(frozen=True)
class ToolOutcome:
    """The result of one tool call. Failures are outcomes too: `call_tool` never raises for them.

    ``text`` is what the model reads: the tool's text content joined (structured content as JSON), or a
    short explanation of the failure.
    """

    server: str
    tool: str
    status: ToolStatus
    text: str
    duration: float
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ServerStatus:
    """Live view of one server's connection, for the admin API and `smg mcp list/check`."""

    name: str
    state: ServerState
    tools: int
    breaker: str = "closed"
    last_error: str | None = None
    reconnects: int = 0
    pid: int | None = None  # stdio child's PID while it runs
    extra: dict[str, Any] = field(default_factory=dict)


class McpRuntime(Protocol):
    """What routing and the admin API need from the MCP connection pool (`smg.mcp.pool.McpPool`)."""

    def statuses(self) -> list[ServerStatus]:
        """Every registered server's live status, sorted by name."""
        ...

    async def list_tools(
        self, servers: list[str] | None = None, *, refresh: bool = False
    ) -> dict[str, list[ToolInfo]]:
        """Tools per server (all servers when ``servers`` is None), from the cache unless ``refresh``.

        Fail open: a server that cannot list its tools is left out (and logged/counted), unless it is
        marked ``required``, in which case `McpServerUnavailable` is raised. Unknown names raise
        `McpServerNotFound`.
        """
        ...

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        caller: Caller = "loop",
        progress: Progress | None = None,
    ) -> ToolOutcome:
        """Call one tool with its timeout (per-tool override, else the server default). Never raises for
        tool-side failures (they become a ToolOutcome with a non-ok status); unknown server raises
        `McpServerNotFound`. Retries only when the tool is `retry_safe`. ``caller`` labels the call's
        telemetry; ``progress`` receives the server's progress notifications. Cancelling the caller
        cancels the call on the server (the SDK sends ``notifications/cancelled``)."""
        ...
