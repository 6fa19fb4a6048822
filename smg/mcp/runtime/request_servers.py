"""MCP servers a request defines itself (a URL and headers it sends), connected for that request only.

`RequestServers` is the operator's rule and the way such servers are opened: allowed only when the
gateway runs with ``--mcp-request-servers`` (off by default), on a host ``--mcp-allowed-hosts`` allows,
over streamable HTTP, under a name no registered server has. `RequestServers.open` checks every server
of a request before contacting any, connects them (each lists its tools once, or the request fails
naming it), yields a runtime that serves them beside the registered servers, and closes them when the
request ends, however it ends (an error, a cancellation): no connection outlives its request, and
none reconnects.

Secrets: a request's header values are sent as written to that server only. A ``${VAR}`` in them is
not expanded from the gateway's environment (unlike a registered server's), so a request cannot make
the gateway send its own secrets anywhere. Header values never appear in a repr, a log line or an
error. Telemetry: a request server's tool calls are counted under the fixed labels ``server`` and
``tool`` = `REQUEST_LABEL` (their names come from requests and from servers the operator does not
know: they never take a slot of the bounded label sets); its connection states are not series.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from smg.errors import InvalidRequest, SmgError
from smg.mcp.errors import InvalidMcpConfig, McpHostNotAllowed, McpServerUnreachable
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import ALLOW_ANY, HostAllowList, redact_url
from smg.mcp.runtime.connection import ServerConnection
from smg.mcp.runtime.framing import message_limit
from smg.mcp.runtime.hooks import McpObserver, NullMcpObserver
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.runtime.probe import first_tools
from smg.mcp.runtime.scoped import ScopedRuntime
from smg.mcp.types import McpRuntime

if TYPE_CHECKING:
    from smg.settings import McpSettings

logger = logging.getLogger("smg.mcp")
REQUEST_LABEL = "(request)"
"""The ``server`` and ``tool`` label values of every request server's tool calls."""
CONNECT_TIMEOUT_SECS = 10.0
"""Bound of a request server's handshake, and of its first tool listing."""
_CLOSE_GRACE_SECS = 5.0


class RequestServersDisabled(InvalidRequest):
    """A request defines an MCP server while the gateway does not allow request-defined servers."""

    code = "mcp_request_servers_disabled"


@dataclass(frozen=True, repr=False)
class RequestServer:
    """One server a request defines: ``label`` (its name in the request), ``url`` (streamable HTTP),
    ``headers`` (sent as written, secrets included), ``index`` (its entry's place in the request's
    ``tools``, for the errors that name it). The repr shows the redacted URL and the header names."""

    index: int
    label: str
    url: str
    headers: Mapping[str, str]

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.headers))
        return f"RequestServer(label={self.label!r}, url={redact_url(self.url)!r}, headers=[{names}])"

    def param(self, field: str) -> str:
        return f"tools[{self.index}].{field}"


class _Verbatim(Mapping[str, str]):
    """An environment in which every ``${NAME}`` stands for itself: header values are sent as written."""

    def __getitem__(self, key: str) -> str:
        return "${" + key + "}"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _CallsOnly(NullMcpObserver):
    """A request server's telemetry: tool calls under `REQUEST_LABEL`, nothing else; ``settled`` is set
    once its one connection attempt is over (connected, failed or closed)."""

    def __init__(self, target: McpObserver) -> None:
        self.settled = anyio.Event()
        self._target = target

    def on_tool_call(self, server: str, tool: str, status: str, duration: float, caller: str) -> None:
        self._target.on_tool_call(REQUEST_LABEL, REQUEST_LABEL, status, duration, caller)

    def on_server_state(self, server: str, state: str) -> None:
        if state != "connecting":
            self.settled.set()


class RequestServers:
    """The rule for request-defined servers and how they are opened (one instance per gateway).
    ``observer`` gets their tool calls (under `REQUEST_LABEL`); ``max_output_bytes`` cuts a result as
    the registered servers' are cut (0: not cut)."""

    def __init__(
        self,
        *,
        enabled: bool = False,
        hosts: HostAllowList = ALLOW_ANY,
        observer: McpObserver | None = None,
        max_output_bytes: int = 0,
        connect_timeout: float = CONNECT_TIMEOUT_SECS,
    ) -> None:
        self.enabled = enabled
        self._hosts = hosts
        self._observer = observer or NullMcpObserver()
        self._max_output_bytes = max_output_bytes
        self._timeout = connect_timeout
        self._options = ConnectionOptions(
            connect_timeout=connect_timeout,
            ready_timeout=connect_timeout,
            reconnect=False,  # a lost session fails the calls that need it; the request goes on
            environ=_Verbatim(),
            max_message_bytes=message_limit(max_output_bytes),
        )

    @classmethod
    def of(cls, settings: McpSettings, observer: McpObserver) -> RequestServers:
        """The rule ``settings`` give (``request_servers``, ``allowed_hosts``, ``max_tool_output_bytes``)."""
        hosts = HostAllowList(settings.allowed_hosts)
        if settings.request_servers and hosts.allows_any:
            logger.warning(
                "--mcp-request-servers is on and --mcp-allowed-hosts allows any host: a request may make"
                " the gateway connect to any URL it can reach"
            )
        return cls(
            enabled=settings.request_servers,
            hosts=hosts,
            observer=observer,
            max_output_bytes=settings.max_tool_output_bytes,
        )

    def check(self, servers: Sequence[RequestServer], registered: Collection[str]) -> None:
        """Raise for the first server the rule refuses: RequestServersDisabled (400) when not allowed,
        InvalidRequest (400) for a name a registered server has, McpHostNotAllowed (403, as the admin
        API answers) for a host outside the allow-list; ``param`` names the entry's field."""
        for server in servers:
            if not self.enabled:
                raise RequestServersDisabled(
                    "this gateway does not connect to MCP servers a request defines (server_url):"
                    " name a registered server by 'server_label', or ask the operator to start the"
                    " gateway with --mcp-request-servers",
                    param=server.param("server_url"),
                )
            if server.label in registered:
                raise InvalidRequest(
                    f"server_label {server.label!r} is the name of a registered MCP server: give the"
                    " server this request defines another label",
                    param=server.param("server_label"),
                )
            try:
                self._hosts.check(server.label, server.url)
            except McpHostNotAllowed as exc:
                exc.param = server.param("server_url")
                raise

    @asynccontextmanager
    async def open(self, base: McpRuntime, servers: Sequence[RequestServer]) -> AsyncIterator[McpRuntime]:
        """``base`` plus ``servers`` (checked first, `check`), connected and listed, for the block; closed
        when it exits. Without servers, ``base`` itself. Raises what `check` raises, and
        McpServerUnreachable (``param``: the entry's ``server_url``) for one that cannot be connected
        and listed within `CONNECT_TIMEOUT_SECS`."""
        if not servers:
            yield base
            return
        self.check(servers, {status.name for status in base.statuses()})
        specs = [(server, _spec(server)) for server in servers]
        opened: dict[str, tuple[ServerConnection, _CallsOnly, RequestServer]] = {}
        failure: SmgError | None = None
        async with anyio.create_task_group() as tg:
            try:
                for server, spec in specs:
                    observer = _CallsOnly(self._observer)
                    connection = ServerConnection(spec, options=self._options, observer=observer)
                    opened[server.label] = (connection, observer, server)
                    await tg.start(connection.run)
                await self._first_lists(opened.values())
                yield ScopedRuntime(
                    base,
                    {label: c for label, (c, _, _) in opened.items()},
                    max_output_bytes=self._max_output_bytes,
                )
            except SmgError as exc:  # re-raised below, outside the task group (no exception group)
                failure = exc
            finally:
                with anyio.CancelScope(shield=True):
                    await _close_all([c for c, _, _ in opened.values()])
        if failure is not None:
            raise failure

    async def _first_lists(
        self, opened: Collection[tuple[ServerConnection, _CallsOnly, RequestServer]]
    ) -> None:
        """List each server's tools once, concurrently. Raises McpServerUnreachable for the first (in
        request order) that could not be connected or listed."""
        failed: dict[int, McpServerUnreachable] = {}

        async def one(connection: ServerConnection, observer: _CallsOnly, server: RequestServer) -> None:
            try:
                await first_tools(connection, observer.settled, self._timeout)
            except McpServerUnreachable as exc:
                exc.param = server.param("server_url")
                failed[server.index] = exc

        async with anyio.create_task_group() as tg:
            for connection, observer, server in opened:
                tg.start_soon(one, connection, observer, server)
        if failed:
            raise failed[min(failed)]


def _spec(server: RequestServer) -> ServerSpec:
    """The spec of a request server. Raises InvalidRequest naming the entry's field it finds wrong."""
    try:
        return ServerSpec(
            name=server.label, transport="streamable-http", url=server.url, headers=dict(server.headers)
        )
    except InvalidMcpConfig as exc:
        field = {"name": "server_label", "url": "server_url"}.get(exc.param or "", "headers")
        raise InvalidRequest(f"{field}: {exc.message}", param=server.param(field)) from None


async def _close_all(connections: Sequence[ServerConnection]) -> None:
    async with anyio.create_task_group() as tg:
        for connection in connections:
            tg.start_soon(_close, connection)


async def _close(connection: ServerConnection) -> None:
    await connection.close(grace=_CLOSE_GRACE_SECS)
