"""MCP side of smg: server registry, naming and (later) sessions and tool execution.

Knows the MCP protocol, never OpenAI types; `smg.routing` adapts between the two. Never imports
`smg.api`, `smg.routing`, `smg.workers`, fastapi or telemetry libraries (telemetry goes through hooks).
"""

from smg.mcp.config import ServerSpec, redact_mapping, resolve_secrets
from smg.mcp.errors import (
    InvalidMcpConfig,
    McpRegistryError,
    McpServerExists,
    McpServerNotFound,
    McpServerUnavailable,
    McpServerUnreachable,
    ToolNameCollision,
    UnresolvedSecret,
)
from smg.mcp.hooks import Backoff, BreakerLike, McpObserver, NullMcpObserver
from smg.mcp.naming import NameFinding, ToolNameMap, check_new_server, exposed_tool_name
from smg.mcp.pool import McpPool
from smg.mcp.probe import call_once, probe_tools
from smg.mcp.registry import (
    NullStorageObserver,
    RegistryStore,
    SqliteRegistry,
    StorageObserver,
    default_registry_path,
)
from smg.mcp.types import McpRuntime, ServerStatus, ToolInfo, ToolOutcome
from smg.mcp.yaml_config import load_mcp_config, parse_mcp_config

__all__ = [
    "Backoff",
    "BreakerLike",
    "InvalidMcpConfig",
    "McpObserver",
    "McpPool",
    "McpRegistryError",
    "McpRuntime",
    "McpServerExists",
    "McpServerNotFound",
    "McpServerUnavailable",
    "McpServerUnreachable",
    "NameFinding",
    "NullMcpObserver",
    "NullStorageObserver",
    "RegistryStore",
    "ServerSpec",
    "ServerStatus",
    "SqliteRegistry",
    "StorageObserver",
    "ToolInfo",
    "ToolNameCollision",
    "ToolNameMap",
    "ToolOutcome",
    "UnresolvedSecret",
    "call_once",
    "check_new_server",
    "default_registry_path",
    "exposed_tool_name",
    "load_mcp_config",
    "parse_mcp_config",
    "probe_tools",
    "redact_mapping",
    "resolve_secrets",
]
