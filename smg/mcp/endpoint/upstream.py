"""Prompts and resources of the gateway's MCP endpoint, fetched from the registered servers over their
pooled sessions (prompts named as tools are; resource URIs wrapped, see `smg.mcp.endpoint.catalog`).

Lists are fail-open: a server that is down, or that offers no prompts or resources, is left out. A read
or a get goes to one server; its failure is a JSON-RPC error naming the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    BlobResourceContents,
    GetPromptRequestParams,
    GetPromptResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    PaginatedRequestParams,
    Prompt,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextResourceContents,
)

from smg.mcp.control import McpControl
from smg.mcp.endpoint.catalog import View, unwrap_uri, wrap_uri
from smg.mcp.endpoint.tools import Context, view_of
from smg.mcp.errors import McpServerNotFound, McpServerUnavailable
from smg.mcp.runtime.hooks import logger
from smg.mcp.runtime.tools import FAILURES, describe

T = TypeVar("T")
_MAX_PAGES = 100
_REQUEST_SECS = 30.0  # one upstream prompts/resources request, all pages included
_FAILURES: tuple[type[Exception], ...] = (McpServerNotFound, McpServerUnavailable, *FAILURES)


class UpstreamHandlers:
    def __init__(self, control: McpControl) -> None:
        self._control = control

    async def _each(
        self, view: View, fetch: Callable[[str, Client], Awaitable[list[T]]], *, prefix_of: str | None = None
    ) -> dict[str, list[T]]:
        """``fetch(server, client)`` of every server of ``view`` at once (on the aggregated endpoint, with
        ``prefix_of``, only those whose ``<server>__`` the name ``prefix_of`` starts with); failures are
        left out."""
        found: dict[str, list[T]] = {}

        async def one(server: str) -> None:
            try:
                with anyio.fail_after(_REQUEST_SECS):
                    found[server] = await fetch(server, await self._control.pool.client(server))
            except _FAILURES as exc:
                logger.debug("MCP endpoint: %s left out of a list: %s", server, describe(exc))

        servers = view.servers(self._control)
        if prefix_of is not None and view.only is None:
            servers = [server for server in servers if prefix_of.startswith(server + "__")]
        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(one, server)
        return found

    async def _one(self, view: View, server: str, request: Callable[[Client], Awaitable[T]]) -> T:
        if server not in view.servers(self._control):
            raise MCPError(INVALID_PARAMS, f"no MCP server {server!r} on this endpoint")
        try:
            with anyio.fail_after(_REQUEST_SECS):
                return await request(await self._control.pool.client(server))
        except MCPError:
            raise
        except _FAILURES as exc:
            raise MCPError(INTERNAL_ERROR, f"MCP server {server!r}: {describe(exc)}") from None

    # --- prompts -------------------------------------------------------------------------------------

    async def list_prompts(self, ctx: Context, params: PaginatedRequestParams | None) -> ListPromptsResult:
        view = view_of(ctx)
        listed = await self._each(view, _all_prompts)
        by_name = {(p_server, p.name): p for p_server, prompts in listed.items() for p in prompts}
        names = view.names(self._control, {server: [p.name for p in ps] for server, ps in listed.items()})
        return ListPromptsResult(
            prompts=[by_name[pair].model_copy(update={"name": name}) for name, pair in names.items()]
        )

    async def get_prompt(self, ctx: Context, params: GetPromptRequestParams) -> GetPromptResult:
        view = view_of(ctx)
        listed = await self._each(view, _all_prompts, prefix_of=params.name)
        names = view.names(self._control, {server: [p.name for p in ps] for server, ps in listed.items()})
        pair = names.get(params.name)
        if pair is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
        server, name = pair
        result = await self._one(view, server, lambda client: client.get_prompt(name, params.arguments))
        return result.model_copy(update={"meta": None})  # the upstream server's own metadata stays there

    # --- resources -----------------------------------------------------------------------------------

    async def list_resources(
        self, ctx: Context, params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        listed = await self._each(view_of(ctx), _all_resources)
        return ListResourcesResult(
            resources=[
                r.model_copy(update={"uri": wrap_uri(server, r.uri)})
                for server, resources in sorted(listed.items())
                for r in resources
            ]
        )

    async def list_resource_templates(
        self, ctx: Context, params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        listed = await self._each(view_of(ctx), _all_templates)
        return ListResourceTemplatesResult(
            resource_templates=[
                t.model_copy(update={"uri_template": wrap_uri(server, t.uri_template)})
                for server, templates in sorted(listed.items())
                for t in templates
            ]
        )

    async def read_resource(self, ctx: Context, params: ReadResourceRequestParams) -> ReadResourceResult:
        found = unwrap_uri(params.uri)
        if found is None:
            raise MCPError(INVALID_PARAMS, f"not a resource of this endpoint: {params.uri[:200]!r}")
        server, uri = found
        result = await self._one(view_of(ctx), server, lambda client: client.read_resource(uri))
        contents: list[TextResourceContents | BlobResourceContents] = [
            c.model_copy(update={"uri": wrap_uri(server, c.uri)}) for c in result.contents
        ]
        return result.model_copy(update={"contents": contents, "meta": None})


async def _pages(fetch: Callable[[str | None], Awaitable[tuple[list[T], str | None]]]) -> list[T]:
    items: list[T] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page, cursor = await fetch(cursor)
        items.extend(page)
        if cursor is None:
            break
    return items


async def _all_prompts(server: str, client: Client) -> list[Prompt]:
    if client.server_capabilities.prompts is None:
        return []

    async def page(cursor: str | None) -> tuple[list[Prompt], str | None]:
        result = await client.list_prompts(cursor=cursor)
        return result.prompts, result.next_cursor

    return await _pages(page)


async def _all_resources(server: str, client: Client) -> list[Resource]:
    if client.server_capabilities.resources is None:
        return []

    async def page(cursor: str | None) -> tuple[list[Resource], str | None]:
        result = await client.list_resources(cursor=cursor)
        return result.resources, result.next_cursor

    return await _pages(page)


async def _all_templates(server: str, client: Client) -> list[ResourceTemplate]:
    if client.server_capabilities.resources is None:
        return []

    async def page(cursor: str | None) -> tuple[list[ResourceTemplate], str | None]:
        result = await client.list_resource_templates(cursor=cursor)
        return result.resource_templates, result.next_cursor

    return await _pages(page)
