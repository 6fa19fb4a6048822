"""Registration checks through `validate_server`, with probe functions standing in for real servers."""

from __future__ import annotations

from collections.abc import Mapping

from smg.mcp.errors import McpServerNotFound
from smg.mcp.registry.config import ServerSpec
from smg.mcp.registry.naming import exposed_tool_name
from smg.mcp.registry.validate import (
    McpRegistrationConflict,
    McpRegistrationRefused,
    Probe,
    known_tools,
    validate_server,
)
from smg.mcp.types import ToolInfo

LONG = "t" * 70


def _spec(name: str) -> ServerSpec:
    return ServerSpec(name=name, transport="streamable-http", url=f"http://127.0.0.1:9/{name}")


def _probe(tools: Mapping[str, list[str]]) -> Probe:
    """A probe that lists ``tools[server]`` and treats servers not in ``tools`` as unreachable."""

    async def probe(spec: ServerSpec) -> list[ToolInfo]:
        if spec.name not in tools:
            raise McpServerNotFound(spec.name)
        return [
            ToolInfo(server=spec.name, name=t, description=None, input_schema={}) for t in tools[spec.name]
        ]

    return probe


async def test_reachable_server_with_fitting_names_is_ok_and_each_tool_reports_its_exposed_name() -> None:
    result = await validate_server(
        _spec("calc"), [], probe=_probe({"calc": ["add", "mul"]}), existing_tools={}
    )
    assert result.ok
    assert [t.name for t in result.tools] == ["add", "mul"]
    exposed = {f.tool: f.exposed for f in result.findings if f.kind == "tool"}
    assert exposed == {"add": "calc__add", "mul": "calc__mul"}
    assert result.findings[0].kind == "reachable"


async def test_collision_with_a_registered_servers_exposed_name_is_refused_as_a_conflict() -> None:
    existing = [_spec("a")]
    result = await validate_server(
        _spec("a__b"), existing, probe=_probe({"a__b": ["c"]}), existing_tools={"a": ["b__c"]}
    )
    assert not result.ok
    [collision] = [f for f in result.findings if f.kind == "collision"]
    assert collision.blocking and collision.tool == "c" and collision.exposed == "a__b__c"
    error = result.error()
    assert isinstance(error, McpRegistrationConflict)
    assert error.status == 409 and error.code == "mcp_registration_conflict"


async def test_seventy_character_tool_is_shortened_and_reported_without_blocking() -> None:
    result = await validate_server(
        _spec("faults"), [], probe=_probe({"faults": [LONG, "echo"]}), existing_tools={}
    )
    assert result.ok
    [shortened] = [f for f in result.findings if f.kind == "shortened"]
    assert shortened.tool == LONG
    assert shortened.exposed == exposed_tool_name("faults", LONG)
    assert shortened.exposed is not None and len(shortened.exposed) == 64
    assert shortened.to_dict()["blocking"] is False


async def test_unreachable_server_is_not_ok_and_refused_as_invalid() -> None:
    result = await validate_server(_spec("down"), [], probe=_probe({}), existing_tools={})
    assert not result.ok
    assert [f.kind for f in result.findings] == ["unreachable"]
    error = result.error()
    assert isinstance(error, McpRegistrationRefused)
    assert error.status == 400 and error.code == "mcp_registration_refused"


async def test_server_listing_no_tools_is_not_ok() -> None:
    result = await validate_server(_spec("empty"), [], probe=_probe({"empty": []}), existing_tools={})
    assert not result.ok
    assert [f.kind for f in result.findings] == ["no_tools"]


async def test_taken_name_is_refused_once_even_when_the_registered_server_has_tools() -> None:
    existing = [_spec("calc")]
    result = await validate_server(
        _spec("calc"), existing, probe=_probe({"calc": ["add"]}), existing_tools={"calc": ["add"]}
    )
    assert not result.ok
    assert [f.kind for f in result.findings if f.blocking] == ["server_exists"]
    assert isinstance(result.error(), McpRegistrationConflict)


async def test_registered_server_with_unknown_tools_is_a_warning_not_a_refusal() -> None:
    result = await validate_server(
        _spec("calc"), [_spec("down")], probe=_probe({"calc": ["add"]}), existing_tools={}
    )
    assert result.ok
    assert "unchecked" in [f.kind for f in result.findings]


async def test_known_tools_probes_registered_servers_and_warns_about_unreachable_ones() -> None:
    tools, warnings = await known_tools([_spec("up"), _spec("down")], probe=_probe({"up": ["x"]}))
    assert tools == {"up": ["x"]}
    assert [(w.kind, w.blocking) for w in warnings] == [("unchecked", False)]


async def test_alias_of_the_new_server_is_what_is_checked_for_collisions() -> None:
    spec = ServerSpec(
        name="b", transport="streamable-http", url="http://127.0.0.1:9/b", aliases={"tool": "x"}
    )
    existing = [ServerSpec(name="a", transport="streamable-http", url="http://127.0.0.1:9/a")]
    result = await validate_server(spec, existing, probe=_probe({"b": ["tool"]}), existing_tools={"a": ["x"]})
    assert result.ok
    assert [f.exposed for f in result.findings if f.kind == "tool"] == ["b__x"]
