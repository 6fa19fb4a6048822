"""`McpControl`: the registered servers as the gateway serves them.

It joins the registry file (dynamic, editable offline) with the ``--mcp-config-path`` servers (static),
keeps the `McpPool` in step with both, and answers the admin API: add (validated), remove, views.
A registry edit made by another process is picked up by `sync` (polled by the gateway).

A server is validated on the connection that will serve it: the pool opens it as a candidate, its first
tool list is checked, and the pool adopts it once the server is saved (a stdio server starts once).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import anyio
import anyio.to_thread

from smg.errors import SmgError
from smg.mcp.errors import (
    InvalidMcpConfig,
    McpHostNotAllowed,
    McpServerNotFound,
    McpServerUnavailable,
    McpServerUnreachable,
)
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.hosts import ALLOW_ANY, HostAllowList
from smg.mcp.registry.store import RegistryStore
from smg.mcp.registry.validate import Validation, validate_server
from smg.mcp.runtime.candidate import Candidate
from smg.mcp.runtime.pool import McpPool
from smg.mcp.runtime.probe import check_secrets, first_tools, unreachable
from smg.mcp.types import ToolInfo

log = logging.getLogger("smg.mcp")


class McpControl:
    def __init__(
        self,
        store: RegistryStore,
        pool: McpPool,
        *,
        static: Sequence[ServerSpec] = (),
        probe_timeout: float = 30.0,
        hosts: HostAllowList = ALLOW_ANY,
    ) -> None:
        """``probe_timeout`` bounds a new server's first tool listing (its handshake has the pool's
        connect timeout)."""
        self._store = store
        self._hosts = hosts
        self._refused: dict[str, ServerSpec] = {}  # logged once per refused definition
        self._pool = pool
        self._static = {spec.name: spec for spec in static}
        self._probe_timeout = probe_timeout
        self._version: int | None = None
        self._specs: Mapping[str, ServerSpec] = MappingProxyType({})
        self._always: tuple[str, ...] = ()
        self._aliases: Mapping[str, Mapping[str, str]] = MappingProxyType({})
        self._lock = anyio.Lock()
        self._listeners: dict[object, Callable[[], None]] = {}

    @property
    def pool(self) -> McpPool:
        return self._pool

    # --- what request handling reads (cheap, no I/O) ----------------------------------------------

    def specs(self) -> Mapping[str, ServerSpec]:
        return self._specs

    def always(self) -> tuple[str, ...]:
        """Servers exposed to every request (``expose: always``)."""
        return self._always

    def aliases(self) -> Mapping[str, Mapping[str, str]]:
        return self._aliases

    def get(self, name: str) -> ServerSpec:
        """Raises McpServerNotFound."""
        spec = self._specs.get(name)
        if spec is None:
            raise McpServerNotFound(name)
        return spec

    # --- keeping the pool in step --------------------------------------------------------------------

    async def sync(self, *, force: bool = False) -> bool:
        """Reconcile the pool with the registry when its version moved (or ``force``); True if it did.
        Raises McpRegistryError when the registry file is unusable (the pool is left as it was)."""
        async with self._lock:
            version = await anyio.to_thread.run_sync(self._store.version)
            if version == self._version and not force:
                return False
            stored = await anyio.to_thread.run_sync(self._store.list)
            specs = dict(self._static)
            for spec in stored:
                if spec.name in specs:
                    log.error(
                        "MCP server %s is both in the registry and in the YAML config; YAML wins", spec.name
                    )
                    continue
                specs[spec.name] = spec
            specs = {name: spec for name, spec in specs.items() if self._allowed(spec)}
            await self._pool.reconcile(specs.values())
            changed = specs != dict(self._specs)
            self._specs = MappingProxyType(specs)
            self._always = tuple(name for name, s in sorted(specs.items()) if s.expose == "always")
            self._aliases = MappingProxyType({name: s.aliases for name, s in specs.items() if s.aliases})
            self._version = version
        if changed:
            for listener in list(self._listeners.values()):
                listener()
        return True

    def watch(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` (on the event loop; it must not block or raise) whenever the served servers
        change: added, removed or redefined. Returns its removal."""
        token = object()
        self._listeners[token] = listener

        def unwatch() -> None:
            self._listeners.pop(token, None)

        return unwatch

    def _allowed(self, spec: ServerSpec) -> bool:
        """Whether ``spec`` may be served; a refused one is logged (once while it stays unchanged)."""
        try:
            self._hosts.check(spec.name, spec.url)
        except McpHostNotAllowed as exc:
            if self._refused.get(spec.name) != spec:
                log.error("%s; not starting it", exc.message)
            self._refused[spec.name] = spec
            return False
        self._refused.pop(spec.name, None)
        return True

    async def run_sync_loop(self, interval_secs: float) -> None:
        """Poll the registry forever (edits made offline by ``smg mcp --registry`` reach the gateway)."""
        while True:
            await anyio.sleep(interval_secs)
            try:
                if await self.sync():
                    log.info("MCP registry changed; now serving %s", ", ".join(self._specs) or "no servers")
            except SmgError as exc:  # an unusable registry file: keep serving what we have, retry later
                log.error("MCP registry: %s", exc.message)

    # --- admin operations ----------------------------------------------------------------------------

    async def list_each(
        self, names: Sequence[str] | None = None, *, refresh: bool = False
    ) -> tuple[dict[str, list[ToolInfo]], dict[str, str]]:
        """Tools per server, listed one server at a time: (tools of the servers that answered, the reason
        of each that did not). Unlike a chat request, a ``required`` server that is down does not fail
        the whole answer. Raises McpServerNotFound for an unknown name."""
        listed: dict[str, list[ToolInfo]] = {}
        errors: dict[str, str] = {}

        async def one(name: str) -> None:
            try:
                listed.update(await self._pool.list_tools([name], refresh=refresh))
            except McpServerUnavailable as exc:
                errors[name] = exc.message

        async with anyio.create_task_group() as tg:
            for name in sorted(self._specs) if names is None else names:
                tg.start_soon(one, name)
        return listed, errors

    async def add(self, spec: ServerSpec, *, dry_run: bool = False) -> Validation:
        """Validate ``spec`` against the served servers (their cached tool lists; one that cannot list its
        tools now is reported as not checked for collisions), then (unless ``dry_run``) save it and serve
        it on the connection it was validated on. A refused or dry-run server's connection is closed.

        Raises McpHostNotAllowed (nothing is contacted), and McpRegistrationRefused /
        McpRegistrationConflict (with every finding) when invalid.
        """
        self._hosts.check(spec.name, spec.url)
        existing = list(self._specs.values())
        listed, _ = await self.list_each()
        tools = {name: [t.name for t in infos] for name, infos in listed.items()}
        opened: list[Candidate] = []

        async def probe(spec: ServerSpec) -> list[ToolInfo]:
            check_secrets(spec, os.environ if self._pool.environ is None else self._pool.environ)
            opened.append(candidate := await self._pool.open_candidate(spec))
            try:
                return await first_tools(
                    candidate.connection, candidate.observer.settled, self._probe_timeout
                )
            except McpServerUnreachable as exc:
                await self._pool.discard(candidate)  # closed first: a stdio child's stderr is read to its end
                raise unreachable(candidate.connection, exc) from None

        try:
            validation = await validate_server(spec, existing, probe=probe, existing_tools=tools)
            if not validation.ok:
                raise validation.error()
            if not dry_run:
                await anyio.to_thread.run_sync(self._store.add, spec)
                await self.sync(force=True)  # the pool adopts the candidate
        finally:
            for candidate in opened:  # not adopted: refused, a dry run, or the save failed
                with anyio.CancelScope(shield=True):
                    await self._pool.discard(candidate)
        return validation

    async def remove(self, name: str) -> None:
        """Unregister a registry server and close its session. Raises McpServerNotFound, and
        InvalidMcpConfig for a server of the YAML config (only that file can change it)."""
        if name in self._static:
            raise InvalidMcpConfig(
                f"MCP server {name!r} comes from --mcp-config-path; edit that file", server=name
            )
        await anyio.to_thread.run_sync(self._store.remove, name)
        await self.sync(force=True)
