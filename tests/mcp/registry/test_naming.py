"""Exposed tool names: provider-safe, deterministic, exactly reversible, collisions refused."""

from __future__ import annotations

import hashlib
import re

import pytest

from smg.mcp import ToolNameCollision, ToolNameMap, check_new_server, exposed_tool_name

SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
LONG_TOOL = "this_tool_name_is_deliberately_seventy_characters_long_for_testing_xxx"

ODD_TOOL_NAMES = [
    "now",
    "get.weather",
    "with space",
    "tab\there",
    "ünïcødé",
    "日本語ツール",
    "emoji🙂tool",
    "e\u0301",  # combining accent
    "\ud800lone-surrogate",
    "",
    " ",
    "_",
    "-",
    "a/b\\c:d",
    "x" * 200,
    "é" * 64,
    LONG_TOOL,
]


def test_plain_names_are_server_double_underscore_tool() -> None:
    assert exposed_tool_name("clock", "now") == "clock__now"


def test_seventy_character_tool_name_is_shortened_deterministically_and_maps_back() -> None:
    assert len(LONG_TOOL) == 70
    exposed = exposed_tool_name("clock", LONG_TOOL)
    original = f"clock__{LONG_TOOL}"
    assert len(exposed) == 64
    assert SAFE.match(exposed)
    assert exposed == original[:55] + "_" + hashlib.sha256(original.encode()).hexdigest()[:8]
    assert exposed_tool_name("clock", LONG_TOOL) == exposed
    names = ToolNameMap({"clock": [LONG_TOOL, "now"]})
    assert names.resolve(exposed) == ("clock", LONG_TOOL)
    assert names.exposed("clock", LONG_TOOL) == exposed


@pytest.mark.parametrize("tool", ODD_TOOL_NAMES)
def test_odd_tool_names_become_safe_names_that_map_back_exactly(tool: str) -> None:
    exposed = exposed_tool_name("srv-1", tool)
    assert SAFE.match(exposed)
    assert exposed == exposed_tool_name("srv-1", tool)
    names = ToolNameMap({"srv-1": [tool], "other": ["now"]})
    assert names.resolve(exposed) == ("srv-1", tool)
    assert names.exposed("srv-1", tool) == exposed


def test_long_names_sharing_a_prefix_stay_distinct() -> None:
    a, b = "p" * 70 + "_one", "p" * 70 + "_two"
    names = ToolNameMap({"srv": [a, b]})
    assert names.resolve(exposed_tool_name("srv", a)) == ("srv", a)
    assert names.resolve(exposed_tool_name("srv", b)) == ("srv", b)
    assert len(names) == 2


def test_alias_replaces_the_tool_name_but_resolves_to_the_real_tool() -> None:
    names = ToolNameMap({"clock": ["now", "zone"]}, aliases={"clock": {"now": "current_time"}})
    assert names.resolve("clock__current_time") == ("clock", "now")
    assert names.resolve("clock__now") is None
    assert names.exposed("clock", "zone") == "clock__zone"
    assert sorted(names) == ["clock__current_time", "clock__zone"]
    assert "clock__zone" in names


def test_unknown_names_resolve_to_none_and_unknown_pairs_raise_key_error() -> None:
    names = ToolNameMap({"clock": ["now"]})
    assert names.resolve("get_weather") is None
    with pytest.raises(KeyError):
        names.exposed("clock", "later")


@pytest.mark.parametrize(
    ("tools", "aliases"),
    [
        ({"a__b": ["c"], "a": ["b__c"]}, None),
        ({"srv": ["get.x", "get_x"]}, None),
        ({"srv": ["now", "later"]}, {"srv": {"later": "now"}}),
        ({"s": ["a b", "a_b"]}, None),
    ],
)
def test_two_pairs_with_the_same_exposed_name_are_refused(
    tools: dict[str, list[str]], aliases: dict[str, dict[str, str]] | None
) -> None:
    with pytest.raises(ToolNameCollision) as info:
        ToolNameMap(tools, aliases=aliases)
    assert (info.value.code, info.value.status) == ("tool_name_collision", 409)
    assert info.value.first != info.value.second


def test_collision_error_names_both_servers_and_tools() -> None:
    with pytest.raises(ToolNameCollision) as info:
        ToolNameMap({"a__b": ["c"], "a": ["b__c"]})
    assert info.value.exposed == "a__b__c"
    assert info.value.first == ("a__b", "c")
    assert info.value.second == ("a", "b__c")


def test_repeated_tool_of_one_server_is_not_a_collision() -> None:
    assert len(ToolNameMap({"srv": ["now", "now"]})) == 1


def test_check_new_server_reports_every_problem_without_raising() -> None:
    existing = ToolNameMap({"a__b": ["c"], "clock": ["now"]})
    findings = check_new_server(existing, "a", ["b__c", "get.x", "get_x", LONG_TOOL])
    kinds = [(f.kind, f.tool) for f in findings]
    assert kinds == [
        ("collision", "b__c"),
        ("renamed", "get.x"),
        ("collision", "get_x"),
        ("shortened", LONG_TOOL),
    ]
    assert [f.blocking for f in findings] == [True, False, True, False]


def test_check_new_server_reports_an_existing_server_once() -> None:
    existing = ToolNameMap({"clock": ["now", "zone"]})
    findings = check_new_server(existing, "clock", ["now", "zone"])
    assert [(f.kind, f.blocking) for f in findings] == [("server_exists", True)]


def test_check_new_server_finds_nothing_for_a_clean_server_and_applies_aliases() -> None:
    existing = ToolNameMap({"clock": ["now"]})
    assert check_new_server(existing, "calc", ["add", "mul"]) == []
    aliased = check_new_server(ToolNameMap({"a": ["b__c"]}), "a__b", ["x"], aliases={"x": "c"})
    assert [(f.kind, f.tool, f.exposed) for f in aliased] == [("collision", "x", "a__b__c")]
