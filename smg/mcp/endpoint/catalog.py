"""What one caller of the gateway's MCP endpoint sees: the tools, prompts and resources of the registered
servers its key may use, under the endpoint's names, and the way back from such a name to its server.

Names: on the aggregated endpoint a tool or a prompt is ``<server>__<name>`` with the tool loop's rule
(`smg.mcp.registry.naming`: aliases, provider-safe characters, the 64-character shortening); on a
server's own endpoint it keeps its own name. A resource URI is wrapped as ``smg://<server>/<uri>`` (the
server's URI verbatim after the first ``/``), on both endpoints, so a client can hand it back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from smg.keys.scope import KeyScope
from smg.mcp.control import McpControl
from smg.mcp.errors import ToolNameCollision
from smg.mcp.registry.naming import ToolNameMap
from smg.mcp.runtime.hooks import logger
from smg.mcp.types import ToolInfo

RESOURCE_SCHEME = "smg://"


def wrap_uri(server: str, uri: str) -> str:
    """The endpoint's URI for resource ``uri`` of ``server`` (also applied to URI templates)."""
    return f"{RESOURCE_SCHEME}{server}/{uri}"


def unwrap_uri(uri: str) -> tuple[str, str] | None:
    """(server, the server's own URI) of an endpoint URI, or None when ``uri`` is not one."""
    if not uri.startswith(RESOURCE_SCHEME):
        return None
    server, sep, inner = uri[len(RESOURCE_SCHEME) :].partition("/")
    return (server, inner) if sep and server and inner else None


@dataclass(frozen=True)
class View:
    """Which servers one request of the endpoint may reach: those ``scope`` allows, or only ``only``
    (a server's own endpoint, whose names carry no server prefix)."""

    scope: KeyScope
    only: str | None = None

    def servers(self, control: McpControl) -> list[str]:
        names = sorted(control.specs()) if self.only is None else [self.only]
        return [name for name in names if name in control.specs() and self.scope.allows_server(name)]

    def names(self, control: McpControl, listed: Mapping[str, list[str]]) -> dict[str, tuple[str, str]]:
        """Endpoint name -> (server, name) for the ``listed`` names per server (tools or prompts)."""
        if self.only is not None:
            return {name: (self.only, name) for name in listed.get(self.only, [])}
        aliases, kept = control.aliases(), {server: list(names) for server, names in listed.items()}
        while True:  # each pass leaves one name out, so it ends
            try:
                return dict(ToolNameMap(kept, aliases=aliases).items())
            except ToolNameCollision as exc:  # registration refuses these; a YAML edit could make one
                logger.error("MCP endpoint: %s; the second is left out", exc.message)
                server, name = exc.second
                kept[server] = [n for n in kept[server] if n != name]

    async def tools(self, control: McpControl, servers: list[str] | None = None) -> dict[str, ToolInfo]:
        """Endpoint name -> tool, for every tool this view may call (of ``servers``, a subset of
        `servers`, when given); servers that cannot list their tools now are left out. A tool's name
        does not depend on which other servers are listed."""
        listed, _ = await control.list_each(self.servers(control) if servers is None else servers)
        allowed = {
            server: {t.name: t for t in tools if self.scope.allows_tool(server, t.name)}
            for server, tools in listed.items()
        }
        names = self.names(control, {server: list(tools) for server, tools in allowed.items()})
        return {exposed: allowed[server][tool] for exposed, (server, tool) in names.items()}
