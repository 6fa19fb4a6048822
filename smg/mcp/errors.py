"""The MCP branch of the error tree (subclasses of `smg.errors`; this module only adds leaves).

    SmgError                          status  code
    +-- McpRegistryError              500     mcp_registry_error   (the registry file is unusable)
    +-- InvalidRequest
    |   +-- InvalidMcpConfig          400     invalid_mcp_config
    |       +-- UnresolvedSecret      400     unresolved_secret    (a ``${VAR}`` names an unset variable)
    +-- PermissionDenied
    |   +-- McpHostNotAllowed         403     mcp_host_not_allowed (URL host outside --mcp-allowed-hosts)
    +-- NotFound
    |   +-- McpServerNotFound         404     mcp_server_not_found
    +-- Conflict
    |   +-- McpServerExists           409     mcp_server_exists
    |   +-- ToolNameCollision         409     tool_name_collision
    +-- ServiceUnavailable
        +-- McpServerUnavailable      503     mcp_server_unavailable (a ``required`` server is down)

No message ever contains a secret value: errors name fields and ``${VAR}`` variables, never their values.
"""

from __future__ import annotations

from smg.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    SmgError,
)


class InvalidMcpConfig(InvalidRequest):
    """An MCP server definition (spec, registry row or YAML file) is invalid. ``param`` names the field."""

    code = "invalid_mcp_config"

    def __init__(self, message: str, *, server: str | None = None, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.server = server


class UnresolvedSecret(InvalidMcpConfig):
    """A ``${VAR}`` reference names a variable that is not set; ``variable`` is its name."""

    code = "unresolved_secret"

    def __init__(self, variable: str, *, key: str, server: str | None = None) -> None:
        where = f"MCP server {server!r}: " if server else ""
        super().__init__(
            f"{where}{key}: environment variable {variable} referenced as ${{{variable}}} is not set",
            server=server,
            param=key,
        )
        self.variable = variable


class McpHostNotAllowed(PermissionDenied):
    """An MCP server URL names a host outside ``--mcp-allowed-hosts``; ``host`` is that host."""

    code = "mcp_host_not_allowed"

    def __init__(self, server: str, host: str) -> None:
        super().__init__(
            f"MCP server {server!r}: host {host!r} is not in the allowed MCP hosts (--mcp-allowed-hosts)",
            param="url",
        )
        self.server = server
        self.host = host


class McpServerNotFound(NotFound):
    code = "mcp_server_not_found"

    def __init__(self, server: str) -> None:
        super().__init__(f"no MCP server named {server!r} is registered", param="name")
        self.server = server


class McpServerExists(Conflict):
    code = "mcp_server_exists"

    def __init__(self, server: str) -> None:
        super().__init__(f"an MCP server named {server!r} is already registered", param="name")
        self.server = server


class ToolNameCollision(Conflict):
    """Two different (server, tool) pairs would be offered to the model under the same name."""

    code = "tool_name_collision"

    def __init__(self, exposed: str, *, first: tuple[str, str], second: tuple[str, str]) -> None:
        super().__init__(
            f"tool {first[1]!r} of MCP server {first[0]!r} and tool {second[1]!r} of MCP server "
            f"{second[0]!r} would both be offered as {exposed!r}"
        )
        self.exposed = exposed
        self.first = first
        self.second = second


class McpRegistryError(SmgError):
    """The registry storage failed (unreadable file, corrupt row); carries the file path."""

    code = "mcp_registry_error"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"MCP registry {path}: {message}")
        self.path = path


class McpRegistryUnavailable(McpRegistryError):
    """The registry's database cannot be reached right now (down, refused, connection lost)."""

    status = 503


class McpServerUnavailable(ServiceUnavailable):
    """A ``required`` MCP server cannot serve its tools right now."""

    code = "mcp_server_unavailable"

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server '{server}' is unavailable: {reason}")
        self.server = server


class McpServerUnreachable(SmgError):
    """An MCP server could not be reached or did not complete the MCP handshake (probe, validation)."""

    status = 502
    code = "mcp_server_unreachable"

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server '{server}' is unreachable: {reason}")
        self.server = server
        self.reason = reason
