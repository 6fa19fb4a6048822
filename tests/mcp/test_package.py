"""The public surface of smg.mcp and its import boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import smg.mcp

FORBIDDEN = (
    "smg.api",
    "smg.routing",
    "smg.workers",
    "fastapi",
    "starlette",
    "prometheus_client",
    "opentelemetry",
)


def test_public_names_are_pinned() -> None:
    assert sorted(smg.mcp.__all__) == [
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


def test_mcp_package_never_imports_other_layers_or_telemetry() -> None:
    package = Path(smg.mcp.__file__).parent
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert not module.startswith(FORBIDDEN), f"{source.name} imports {module}"
