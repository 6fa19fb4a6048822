"""The MCP side of smg: knows the MCP protocol, never OpenAI types (`smg.routing` adapts between the two).

- `smg.mcp.registry`: what servers exist. Specs and secrets (`config`), SMG's YAML file (`yaml_config`),
  the registry store (`store`), host allow-list (`hosts`), tool naming (`naming`), registration checks
  (`validate`) and redacted views (`views`).
- `smg.mcp.runtime`: talking to them. One owner task per session (`connection`), the pool (`pool`),
  the servers one request defines, connected for it alone (`request_servers`, `scoped`),
  transports (`transports`, `http_transport`, `stdio`, `stdio_client`, `stdio_exec`), bounded framing
  (`framing`, `http_limits`, `sse_filter`), calls, tool inventory and conversion (`calls`, `tools`,
  `convert`), the breaker and replays around a call (`guarded`), retry policies (`retrying`), telemetry
  hooks (`hooks`), upstream tool-list changes (`watch`) and probes (`probe`).
- `smg.mcp.control.McpControl`: what is served (registry plus YAML, synced onto the pool).
- `smg.mcp.endpoint`: the gateway as an MCP server for MCP clients (``/mcp``), on the SDK's server side.

Never imports `smg.api`, `smg.routing`, `smg.workers`, web frameworks or telemetry libraries (telemetry
goes through hooks). Names below are imported on first use, so importing `smg.mcp` loads neither the
MCP SDK nor pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from smg.mcp.registry.config import ServerSpec, redact_mapping, resolve_secrets
    from smg.mcp.registry.naming import NameFinding, ToolNameMap, check_new_server, exposed_tool_name
    from smg.mcp.registry.store import (
        NullStorageObserver,
        RegistryStore,
        SqliteRegistry,
        StorageObserver,
        default_registry_path,
    )
    from smg.mcp.registry.yaml_config import load_mcp_config, parse_mcp_config
    from smg.mcp.runtime.hooks import Backoff, BreakerLike, McpObserver, NullMcpObserver
    from smg.mcp.runtime.pool import McpPool
    from smg.mcp.runtime.probe import call_once, probe_tools
    from smg.mcp.types import McpRuntime, ServerStatus, ToolInfo, ToolOutcome

_WHERE = {
    "Backoff": "smg.mcp.runtime.hooks",
    "BreakerLike": "smg.mcp.runtime.hooks",
    "InvalidMcpConfig": "smg.mcp.errors",
    "McpObserver": "smg.mcp.runtime.hooks",
    "McpPool": "smg.mcp.runtime.pool",
    "McpRegistryError": "smg.mcp.errors",
    "McpRuntime": "smg.mcp.types",
    "McpServerExists": "smg.mcp.errors",
    "McpServerNotFound": "smg.mcp.errors",
    "McpServerUnavailable": "smg.mcp.errors",
    "McpServerUnreachable": "smg.mcp.errors",
    "NameFinding": "smg.mcp.registry.naming",
    "NullMcpObserver": "smg.mcp.runtime.hooks",
    "NullStorageObserver": "smg.mcp.registry.store",
    "RegistryStore": "smg.mcp.registry.store",
    "ServerSpec": "smg.mcp.registry.config",
    "ServerStatus": "smg.mcp.types",
    "SqliteRegistry": "smg.mcp.registry.store",
    "StorageObserver": "smg.mcp.registry.store",
    "ToolInfo": "smg.mcp.types",
    "ToolNameCollision": "smg.mcp.errors",
    "ToolNameMap": "smg.mcp.registry.naming",
    "ToolOutcome": "smg.mcp.types",
    "UnresolvedSecret": "smg.mcp.errors",
    "call_once": "smg.mcp.runtime.probe",
    "check_new_server": "smg.mcp.registry.naming",
    "default_registry_path": "smg.mcp.registry.store",
    "exposed_tool_name": "smg.mcp.registry.naming",
    "load_mcp_config": "smg.mcp.registry.yaml_config",
    "parse_mcp_config": "smg.mcp.registry.yaml_config",
    "probe_tools": "smg.mcp.runtime.probe",
    "redact_mapping": "smg.mcp.registry.config",
    "resolve_secrets": "smg.mcp.registry.config",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'smg.mcp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
