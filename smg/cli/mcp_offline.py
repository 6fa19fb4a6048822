"""``smg mcp`` without a gateway: edits the SQLite registry file and talks to the MCP servers directly.

A running gateway notices registry edits by itself (it polls the registry's version). Every method returns
the admin API's wire shapes, so output is the same whichever the target.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from smg.errors import SmgError
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.registry.store import SqliteRegistry
from smg.mcp.registry.validate import Validation, known_tools, validate_server
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


class OfflineBackend:
    """The registry file at ``path``; servers are probed with ``timeout`` seconds per connection."""

    def __init__(self, path: Path, *, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
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
        """Validate, then save unless ``dry_run``. Raises the `Validation.error()` when refused."""
        existing = self.registry.list()
        # Probe the new server while the registered ones are probed for their tool names.
        new_tools = asyncio.create_task(self._probe(spec))
        tools, warnings = await known_tools([s for s in existing if s.name != spec.name], probe=self._probe)
        validation = await validate_server(spec, existing, probe=lambda _: new_tools, existing_tools=tools)
        # known_tools' warnings say why a server's tools are unknown; drop the generic duplicates.
        found = [f for f in validation.findings if f.kind != "unchecked"] + warnings
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
