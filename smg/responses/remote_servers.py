"""``mcp`` tools that define their own server (``server_url``), read from a Responses request.

An ``mcp`` entry with ``server_url`` (an ``http://`` or ``https://`` URL of a streamable-HTTP MCP
server), optional ``headers`` (an object of string values) and optional ``authorization`` (sent as
``Authorization: Bearer <value>``, OpenAI's meaning) defines a server for this request only
(`smg.mcp.runtime.request_servers` decides whether the gateway allows it and connects it). What stays
in the request's ``tools``, and so is echoed in the response and stored with it, is the entry with the
URL redacted (`redact_url`), every header value replaced by ``***`` and no ``authorization``: the
secrets live in the `RequestServer` alone, for the request's lifetime.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from smg.errors import InvalidRequest, McpServerForbidden
from smg.keys.scope import KeyScope
from smg.mcp.registry.config import REDACTED, SERVER_NAME_RE
from smg.mcp.registry.hosts import redact_url
from smg.mcp.runtime.request_servers import RequestServer
from smg.mcp.types import McpRuntime
from smg.routing.loop import ToolLoop

SECRET_FIELDS = ("headers", "authorization")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# Headers the transport sets itself, or that would address another server than the URL names.
_RESERVED = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-authorization",
        "mcp-session-id",
        "mcp-protocol-version",
    }
)
_MAX_HEADERS = 32
_MAX_VALUE_CHARS = 8192


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _headers(tool: dict[str, Any], i: int) -> dict[str, str]:
    raw = tool.get("headers")
    where = f"tools[{i}].headers"
    if raw is None:
        headers: dict[str, str] = {}
    elif not isinstance(raw, dict) or len(raw) > _MAX_HEADERS:
        raise _fail(f"'headers' must be an object of at most {_MAX_HEADERS} string values", where)
    else:
        headers = {}
        for name, value in raw.items():
            if not _HEADER_NAME.match(name) or name.lower() in _RESERVED:
                raise _fail(f"{name!r} is not a header a request may set", f"{where}.{name}")
            if not isinstance(value, str) or _BAD_VALUE.search(value) or len(value) > _MAX_VALUE_CHARS:
                raise _fail(
                    f"a header value must be a string of at most {_MAX_VALUE_CHARS} characters"
                    " without line breaks",
                    f"{where}.{name}",
                )
            headers[name] = value
    token = tool.get("authorization")
    if token is not None:
        where = f"tools[{i}].authorization"
        if not isinstance(token, str) or not token or _BAD_VALUE.search(token):
            raise _fail("'authorization' must be a non-empty string without line breaks", where)
        if any(name.lower() == "authorization" for name in headers):
            raise _fail("give the token either as 'authorization' or as an Authorization header", where)
        headers["Authorization"] = f"Bearer {token}"
    return headers


def split_server(tool: dict[str, Any], i: int) -> tuple[dict[str, Any], RequestServer | None]:
    """The ``mcp`` entry ``tools[i]`` as it may be echoed and stored, and the server it defines (None
    when it names a registered server). Raises InvalidRequest naming the entry's field."""
    url = tool.get("server_url")
    if url is None:
        for key in SECRET_FIELDS:
            if key in tool:
                raise _fail(
                    f"'{key}' is sent to a server the request defines: it needs 'server_url'",
                    f"tools[{i}].{key}",
                )
        return tool, None
    label = tool.get("server_label")
    if not isinstance(label, str) or not SERVER_NAME_RE.match(label):
        raise _fail(
            "the server_label of a server the request defines must be 1-32 characters of a-z, A-Z,"
            " 0-9, '_' or '-'",
            f"tools[{i}].server_label",
        )
    if not isinstance(url, str) or not _is_http(url):
        raise _fail(
            "'server_url' must be the http:// or https:// URL of a streamable-HTTP MCP server",
            f"tools[{i}].server_url",
        )
    server = RequestServer(i, label, url, _headers(tool, i))
    shown = {k: v for k, v in tool.items() if k != "authorization"}
    shown["server_url"] = redact_url(url)
    if "headers" in tool and tool["headers"] is not None:
        shown["headers"] = {name: REDACTED for name in tool["headers"]}
    return shown, server


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # urlsplit validates the port only when it is read
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def unique_servers(servers: list[RequestServer]) -> tuple[RequestServer, ...]:
    """``servers`` with a label given twice kept once; the same label for two different definitions is
    a 400 naming the later entry's ``server_label``."""
    kept: dict[str, RequestServer] = {}
    for server in servers:
        known = kept.get(server.label)
        if known is None:
            kept[server.label] = server
        elif (known.url, dict(known.headers)) != (server.url, dict(server.headers)):
            raise _fail(
                f"server_label {server.label!r} is defined twice with different servers",
                server.param("server_label"),
            )
    return tuple(kept.values())


def loop_on(loop: ToolLoop, runtime: McpRuntime) -> ToolLoop:
    """``loop`` listing and calling its tools on ``runtime`` (a request's own servers beside the
    registered ones); its dispatcher, budgets and telemetry are the same."""
    if runtime is loop.runtime:
        return loop
    scoped = copy.copy(loop)
    scoped.runtime = runtime
    return scoped


def check_served(requests: list[dict[str, Any]], served: Collection[str]) -> None:
    """Raise InvalidRequest (``param``: ``input``) for the first approved ``mcp_approval_request`` whose
    server this request neither defines nor finds registered: a request-defined server lives for one
    request, so the follow-up that approves its call sends its ``mcp`` entry again."""
    for request in requests:
        if request["server_label"] not in served:
            raise _fail(
                f"approval request {request['id']!r} is for MCP server {request['server_label']!r}, which"
                " is not registered and which this request does not define: send its mcp tool (with"
                " server_url) again with the approval",
                "input",
            )


def require_unscoped(scope: KeyScope, servers: Collection[RequestServer]) -> None:
    """Raise McpServerForbidden (403) when a key restricted to servers or tools defines a server: its
    scope names the servers the operator registered, not ones a request brings."""
    if servers and (scope.servers is not None or scope.tools is not None):
        server = next(iter(servers))
        raise McpServerForbidden(
            f"the API key {scope.name!r} may use only the MCP servers and tools its scope names;"
            " it may not define a server (server_url)",
            server=server.label,
            param=server.param("server_url"),
        )
