"""What the gateway reads of a ``POST /v1/responses`` body, validated.

Every top-level field is either accepted (`ACCEPTED`) or refused with a 400 naming it: a field the
gateway would not honour is never silently ignored. Fields of OpenAI's API that are not served yet
(``reasoning``, ``truncation``, ...) are refused the same way, except that one asking for nothing
(`ACCEPTED_WHEN_EMPTY`: ``include`` empty or null) is accepted. ``text`` is read by
`smg.responses.text_format`; ``background`` needs ``store`` and refuses ``stream``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smg.errors import InvalidRequest
from smg.protocol import TooManyMessages, TooManyTools
from smg.responses.approval import check_require_approval
from smg.responses.items import normalise_input
from smg.responses.remote_servers import split_server, unique_servers
from smg.responses.text_format import parse_text

if TYPE_CHECKING:
    from smg.mcp.runtime.request_servers import RequestServer
    from smg.settings import RequestLimits

ACCEPTED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "max_tool_calls",
        "temperature",
        "top_p",
        "store",
        "stream",
        "previous_response_id",
        "metadata",
        "user",
        "text",
        "background",
    }
)
# Fields not served that ask for nothing when empty or null, so accepting them then honours them:
# openai-agents sends ``include: []`` with every request.
ACCEPTED_WHEN_EMPTY = frozenset({"include"})
_MAX_METADATA_PAIRS = 16


@dataclass(frozen=True)
class ResponsesRequest:
    """A validated Responses request; ``input`` holds normalised items (each with an ``id``)."""

    model: str
    input: list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    store: bool = True
    stream: bool = False
    previous_response_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    text_format: dict[str, Any] | None = None  # `smg.responses.text_format`; None: plain text
    background: bool = False
    # Servers the request defines (``server_url``), with their secrets: never echoed, stored or printed.
    servers: tuple[RequestServer, ...] = field(default=(), repr=False)


def _check(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(message, param=param)


def _optional(body: dict[str, Any], key: str, kinds: tuple[type, ...], what: str) -> Any:
    """``body[key]`` when absent, null or of ``kinds`` (a boolean is no number). Raises InvalidRequest."""
    value = body.get(key)
    wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
    _check(value is None or not wrong, f"'{key}' must be {what}", key)
    return value


def _tools(raw: Any) -> tuple[list[dict[str, Any]], tuple[RequestServer, ...]]:
    """The tools as echoed (an ``mcp`` entry's secrets left out: `split_server`) and the servers the
    request defines."""
    _check(raw is None or isinstance(raw, list), "'tools' must be an array", "tools")
    tools: list[dict[str, Any]] = list(raw or [])
    servers: list[RequestServer] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            name = tool.get("name")
            _check(isinstance(name, str) and bool(name), "a function tool needs a 'name'", f"tools[{i}].name")
            params = tool.get("parameters")
            _check(params is None or isinstance(params, dict), "must be an object", f"tools[{i}].parameters")
        elif kind == "mcp":
            for key in ("connector_id", "tunnel_id"):
                _check(
                    key not in tool,
                    f"'{key}' is not supported: name a registered server by 'server_label', or give"
                    " 'server_url'",
                    f"tools[{i}].{key}",
                )
            check_require_approval(tool.get("require_approval"), f"tools[{i}].require_approval")
            tools[i], server = split_server(tool, i)
            servers += [server] if server is not None else []
        else:
            raise InvalidRequest("only 'function' and 'mcp' tools are supported", param=f"tools[{i}].type")
    return tools, unique_servers(servers)


def parse_responses_request(body: Any, *, limits: RequestLimits | None = None) -> ResponsesRequest:
    """Validate a parsed ``POST /v1/responses`` body. Raises InvalidRequest (``param``: the field),
    TooManyMessages (``input``), TooManyTools (``tools``)."""
    _check(isinstance(body, dict), "request body must be a JSON object", "body")
    for key, value in body.items():
        asks_nothing = key in ACCEPTED_WHEN_EMPTY and (value is None or value == [])
        _check(key in ACCEPTED or asks_nothing, f"unknown or unsupported parameter: '{key}'", key)
    model = body.get("model")
    _check(
        isinstance(model, str) and bool(model), "'model' is required and must be a non-empty string", "model"
    )
    _check("input" in body, "'input' is required", "input")
    items = normalise_input(body["input"])
    if limits is not None and 0 < limits.max_messages < len(items):
        raise TooManyMessages(
            f"'input' has {len(items)} items; this gateway accepts at most {limits.max_messages}",
            param="input",
        )
    tools, servers = _tools(body.get("tools"))
    if limits is not None and 0 < limits.max_tools < len(tools):
        raise TooManyTools(
            f"'tools' has {len(tools)} entries; this gateway accepts at most {limits.max_tools}",
            param="tools",
        )
    for key in ("max_output_tokens", "max_tool_calls"):
        value = _optional(body, key, (int,), "a positive integer")
        _check(value is None or value > 0, f"'{key}' must be a positive integer", key)
    metadata = _optional(body, "metadata", (dict,), "an object") or {}
    _check(
        len(metadata) <= _MAX_METADATA_PAIRS and all(isinstance(v, str) for v in metadata.values()),
        f"'metadata' must map at most {_MAX_METADATA_PAIRS} keys to strings",
        "metadata",
    )
    store = _optional(body, "store", (bool,), "a boolean")
    stream = _optional(body, "stream", (bool,), "a boolean")
    background = bool(_optional(body, "background", (bool,), "a boolean"))
    _check(
        not background or store is not False,
        "a background response must be stored: 'store' must be true (the default) with 'background'",
        "store",
    )
    _check(
        not (background and stream),
        "background responses are not streamed: create it, then poll GET /v1/responses/{id}",
        "stream",
    )
    return ResponsesRequest(
        model=str(model),
        input=items,
        instructions=_optional(body, "instructions", (str,), "a string"),
        tools=tools,
        tool_choice=body.get("tool_choice"),
        parallel_tool_calls=_optional(body, "parallel_tool_calls", (bool,), "a boolean"),
        max_output_tokens=body.get("max_output_tokens"),
        max_tool_calls=body.get("max_tool_calls"),
        temperature=_optional(body, "temperature", (int, float), "a number"),
        top_p=_optional(body, "top_p", (int, float), "a number"),
        store=True if store is None else store,
        stream=bool(stream),
        previous_response_id=_optional(body, "previous_response_id", (str,), "a string"),
        metadata=metadata,
        user=_optional(body, "user", (str,), "a string"),
        text_format=parse_text(body.get("text")),
        background=background,
        servers=servers,
    )
