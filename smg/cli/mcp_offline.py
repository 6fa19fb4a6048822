"""``smg mcp`` without a gateway: edits the SQLite registry file and talks to the MCP servers directly.

A running gateway notices registry edits by itself (it polls the registry's version). Every method returns
the admin API's wire shapes, so output is the same whichever the target. ``add`` checks a URL against the
MCP host allow-list a gateway would apply, when one is known here (`allowed_hosts`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from smg.errors import SmgError
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import HostAllowList
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.registry.store import SqliteRegistry
from smg.mcp.registry.validate import Validation, host_finding, known_tools, validate_server
from smg.mcp.registry.views import server_view, tool_view
from smg.mcp.types import ToolInfo
from smg.observability.logs import configure_logging


@contextmanager
def _single_error() -> Iterator[None]:
    """Surface an smg error raised inside a task group (the probe's session) as itself, not a group."""
    try:
        yield
    except* (SmgError, OSError) as group:
        raise _first_leaf(group) from None


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _reason(exc: SmgError | OSError) -> str:
    return exc.message if isinstance(exc, SmgError) else str(exc) or type(exc).__name__


def allowed_hosts(
    patterns: Sequence[str] | None, config: str | None, environ: Mapping[str, str]
) -> tuple[HostAllowList | None, str]:
    """The MCP host allow-list a gateway started with the same ``--mcp-allowed-hosts`` (``patterns``),
    ``SMG_MCP_ALLOWED_HOSTS`` and config file (``config``, else ``SMG_CONFIG``) would apply, and where it
    came from (``env SMG_MCP_ALLOWED_HOSTS``...); ``(None, "")`` when none of them sets it. Only that
    variable is read; a config file is read whole, as the gateway reads it. Raises ConfigError naming the
    source of a bad value."""
    from smg.settings.cli import CONFIG_ENV  # pydantic-settings is slow to import: only for ``add``
    from smg.settings.file import read_config_file
    from smg.settings.sources import resolve

    key = "mcp_allowed_hosts"
    path = config or environ.get(CONFIG_ENV) or None
    variable = {name: value for name, value in environ.items() if name == "SMG_MCP_ALLOWED_HOSTS"}
    flags = {key: list(patterns)} if patterns else {}
    resolved = resolve(flags, variable, read_config_file(path) if path else None)
    origin = resolved.origins[key]
    if origin.kind == "default":
        return None, ""
    return HostAllowList(resolved.settings.mcp.allowed_hosts), origin.describe()


class OfflineBackend:
    """The registry file at ``path``; servers are probed with ``timeout`` seconds per connection. ``hosts``
    is the MCP host allow-list `add` applies (None: none is known) and ``hosts_source`` where it came from.
    """

    def __init__(
        self, path: Path, *, timeout: float, hosts: HostAllowList | None = None, hosts_source: str = ""
    ) -> None:
        self._path = path
        self._timeout = timeout
        self._hosts = hosts
        self._hosts_source = hosts_source
        self._registry: SqliteRegistry | None = None

    async def __aenter__(self) -> OfflineBackend:
        if not logging.getLogger().handlers:
            # Connection logs would reach stderr through logging's last resort; failures are reported
            # once, as the error line, instead.
            configure_logging("off")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    @property
    def registry(self) -> SqliteRegistry:
        if self._registry is None:
            self._registry = SqliteRegistry(self._path)
        return self._registry

    async def _probe(self, spec: ServerSpec) -> list[ToolInfo]:
        from smg.mcp.runtime.probe import probe_tools  # the mcp SDK is slow to import: only when connecting

        with _single_error():
            return await probe_tools(spec, timeout=self._timeout)

    async def list_servers(self) -> list[dict[str, Any]]:
        return [server_view(spec) for spec in self.registry.list()]

    async def show(self, name: str) -> dict[str, Any]:
        return server_view(self.registry.get(name))

    async def add(self, spec: ServerSpec, *, dry_run: bool) -> dict[str, Any]:
        """Validate, then save unless ``dry_run``. Raises the `Validation.error()` when refused; a URL
        outside the known host allow-list is refused before anything is contacted."""
        host = host_finding(spec, self._hosts, self._hosts_source)
        if host is not None and host.blocking:
            raise Validation(spec.name, [host]).error()
        existing = self.registry.list()
        # Probe the new server while the registered ones are probed for their tool names.
        new_tools = asyncio.create_task(self._probe(spec))
        tools, warnings = await known_tools([s for s in existing if s.name != spec.name], probe=self._probe)
        validation = await validate_server(spec, existing, probe=lambda _: new_tools, existing_tools=tools)
        # known_tools' warnings say why a server's tools are unknown; drop the generic duplicates.
        found = [f for f in validation.findings if f.kind != "unchecked"] + warnings
        found = ([host] if host is not None else []) + found
        if not validation.ok:
            raise Validation(spec.name, found).error()
        if not dry_run:
            self.registry.add(spec)
        return {"server": server_view(spec), "findings": [f.to_dict() for f in found], "saved": not dry_run}

    async def remove(self, name: str) -> dict[str, Any]:
        self.registry.remove(name)
        return {"removed": name}

    async def tools(self, name: str | None, *, refresh: bool) -> tuple[list[dict[str, Any]], list[str]]:
        """Tools of ``name`` (or of every server, skipping unreachable ones with a warning); always live."""
        if name is not None:
            spec = self.registry.get(name)
            return [tool_view(spec, t) for t in await self._probe(spec)], []
        specs = self.registry.list()
        results = await asyncio.gather(*(self._probe_or_reason(s) for s in specs))
        listing: list[dict[str, Any]] = []
        warnings: list[str] = []
        for spec, result in zip(specs, results, strict=True):
            if isinstance(result, str):
                warnings.append(f"MCP server {spec.name!r} skipped: {result}")
            else:
                listing += [tool_view(spec, t) for t in result]
        return listing, warnings

    async def call(self, name: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call ``tool`` (its name, or its exposed name ``<server>__...``) of ``name`` once."""
        from smg.mcp.runtime.probe import call_once

        spec = self.registry.get(name)
        real = tool
        if tool.startswith(exposed_tool_name(name, "")):
            # Perhaps an exposed name: only the tool list maps it back (shortening is one-way).
            listed = [tool_view(spec, t) for t in await self._probe(spec)]
            if not any(t["name"] == tool for t in listed):
                real = next((t["name"] for t in listed if t["exposed_name"] == tool), tool)
        with _single_error():
            result = await call_once(spec, real, arguments, timeout=self._timeout)
        return {
            "server": result.server,
            "tool": result.tool,
            "status": result.status,
            "text": result.text,
            "duration": result.duration,
            "attempts": result.attempts,
        }

    async def check(self) -> list[dict[str, Any]]:
        specs = self.registry.list()
        results = await asyncio.gather(*(self._probe_or_reason(s) for s in specs))
        rows: list[dict[str, Any]] = []
        for spec, result in zip(specs, results, strict=True):
            failed = isinstance(result, str) or not result
            error = result if isinstance(result, str) else ("lists no tools" if not result else None)
            rows.append(
                {
                    "name": spec.name,
                    "ok": not failed,
                    "state": "failed" if failed else "connected",
                    "tools": 0 if isinstance(result, str) else len(result),
                    "error": error,
                }
            )
        return rows

    async def _probe_or_reason(self, spec: ServerSpec) -> list[ToolInfo] | str:
        try:
            return await self._probe(spec)
        except (SmgError, OSError) as exc:
            return _reason(exc)
