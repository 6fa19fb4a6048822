"""Property-based fuzzing of the code that reads untrusted input: chat bodies, streamed tool-call
fragments, tool arguments, exposed tool names, the MCP YAML config and ``${VAR}`` expansion. Each
either succeeds or raises one of its documented error classes, never anything else."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests._hypothesis_patching  # noqa: F401  # readable hypothesis failures, see there
from smg.errors import InvalidJson, InvalidRequest
from smg.mcp.errors import InvalidMcpConfig, ToolNameCollision, UnresolvedSecret
from smg.mcp.registry.config import resolve_secrets
from smg.mcp.registry.naming import EXPOSED_NAME_RE, ToolNameMap, exposed_tool_name
from smg.mcp.registry.yaml_config import parse_mcp_config
from smg.protocol import parse_chat_request
from smg.routing.accumulator import SseDecoder, ToolCallAccumulator
from smg.routing.budgets import signature

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # orjson refuses integers past 64 bits; a client may send them


json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool"]) | json_values},
        optional={"content": json_values},
    )
    | json_values,
    max_size=4,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text(max_size=10) | json_values,
        "messages": messages | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": st.dictionaries(st.text(max_size=5), json_values, max_size=2) | json_values,
        "tools": st.lists(st.dictionaries(st.sampled_from(["type", "function"]), json_values), max_size=3)
        | json_values,
        "max_tokens": json_values,
    },
)


@FUZZ
@given(st.binary(max_size=200) | chat_bodies.map(_dumps) | json_values.map(_dumps))
def test_chat_body_parses_or_is_an_invalid_request(raw: bytes) -> None:
    try:
        request = parse_chat_request(raw, headers={})
    except InvalidJson as exc:
        assert exc.status == 400 and exc.code == "invalid_json"
        return
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.code == "invalid_request" and exc.param
        return
    assert request.raw == raw and request.model and request.body["messages"]
    assert isinstance(request.affinity_key, bytes)


fragments = st.lists(
    json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "index": st.integers(-3, 5) | json_values,
            "id": st.sampled_from(["call_a", "call_b", ""]) | json_values,
            "function": st.fixed_dictionaries(
                {}, optional={"name": st.text(max_size=8) | json_values, "arguments": st.text(max_size=10)}
            )
            | json_values,
        },
    ),
    max_size=6,
)


@FUZZ
@given(st.lists(fragments, max_size=6))
def test_tool_call_fragments_never_break_the_accumulator(chunks: list[list[Any]]) -> None:
    acc = ToolCallAccumulator()
    for deltas in chunks:
        acc.feed(deltas)
    calls = acc.calls()
    assert [c.index for c in calls] == sorted({c.index for c in calls})
    for call in calls:
        assert isinstance(call.arguments, str) and isinstance(call.name, str)
        assert call.as_message_call()["function"]["arguments"] == call.arguments
        name, arguments = signature(call)
        assert name == call.name and isinstance(arguments, str)


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_sse_decoder_gives_the_same_events_however_the_bytes_are_split(data: bytes, cuts: list[int]) -> None:
    whole = SseDecoder()
    try:
        expected = whole.feed(data)
    except UnicodeDecodeError:
        return  # an event that is not UTF-8 is refused the same way, whatever the split
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(data[start:cut])
        start = max(start, cut)
    pieces.append(data[start:])
    split = SseDecoder()
    got = [payload for piece in pieces for payload in split.feed(piece)]
    assert got == expected


@FUZZ
@given(st.text(max_size=40) | json_values.map(json.dumps))
def test_tool_arguments_give_a_stable_signature(arguments: str) -> None:
    from smg.routing.accumulator import AccumulatedCall

    call = AccumulatedCall(index=0, id="c", name="s__t", arguments=arguments)
    name, canonical = signature(call)
    assert name == "s__t"
    spaced = AccumulatedCall(index=0, id="c", name="s__t", arguments=f"  {arguments}  ")
    if canonical != arguments:  # parsed as an object: whitespace around it changes nothing
        assert signature(spaced) == (name, canonical)


names = st.text(min_size=1, max_size=80)


@FUZZ
@given(names, names)
def test_exposed_names_are_always_provider_safe_and_deterministic(server: str, tool: str) -> None:
    exposed = exposed_tool_name(server, tool)
    assert EXPOSED_NAME_RE.match(exposed)
    assert exposed == exposed_tool_name(server, tool)


@FUZZ
@given(st.dictionaries(names, st.lists(names, max_size=5), max_size=4))
def test_a_name_map_resolves_every_tool_back_exactly_or_reports_a_collision(
    tools: dict[str, list[str]],
) -> None:
    try:
        table = ToolNameMap(tools)
    except ToolNameCollision as exc:
        assert exc.status == 409 and exc.code == "tool_name_collision"
        return
    for server, listed in tools.items():
        for tool in listed:
            assert table.resolve(table.exposed(server, tool)) == (server, tool)


YAML_KEYS = ("name", "protocol", "url", "command", "args", "envs", "headers", "token", "required")
YAML_KEYS += ("tools", "expose", "tool_timeout_secs", "proxy")
yaml_servers = st.lists(
    st.dictionaries(
        st.sampled_from([*YAML_KEYS, "bogus"]),
        json_values | st.sampled_from(["stdio", "sse", "streamable", "http://127.0.0.1:1/mcp", "${X}"]),
        max_size=6,
    )
    | json_values,
    max_size=3,
)


@FUZZ
@given(st.text(max_size=200) | st.fixed_dictionaries({"servers": yaml_servers}).map(yaml.safe_dump))
def test_mcp_yaml_parses_or_is_an_invalid_mcp_config(text: str) -> None:
    try:
        specs = parse_mcp_config(text)
    except InvalidMcpConfig as exc:
        assert exc.status == 400 and exc.code in {"invalid_mcp_config", "unresolved_secret"}
        return
    assert len({spec.name for spec in specs}) == len(specs)


SECRET = "\u2603SECRET-"  # every variable's value starts with it; no message may show it
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)


@FUZZ
@given(
    st.dictionaries(st.text(max_size=8), st.text(max_size=30) | env_names.map(lambda n: f"Bearer ${{{n}}}")),
    st.dictionaries(env_names, st.text(max_size=10).map(lambda t: SECRET + t), max_size=4),
)
def test_env_expansion_substitutes_set_variables_or_names_the_missing_one(
    mapping: dict[str, str], environ: dict[str, str]
) -> None:
    try:
        resolved = resolve_secrets(mapping, environ, server="s")
    except UnresolvedSecret as exc:
        assert exc.variable not in environ and exc.code == "unresolved_secret"
        assert SECRET not in exc.message
        return
    assert set(resolved) == set(mapping)
    for key, value in mapping.items():
        if not re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", value):
            assert resolved[key] == value
