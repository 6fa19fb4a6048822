"""ServerSpec validation, round trip, ${VAR} secrets and redaction."""

from __future__ import annotations

from typing import Any

import pytest

from smg.mcp import InvalidMcpConfig, ServerSpec, UnresolvedSecret, redact_mapping, resolve_secrets

SECRET = "sk-live-0123456789abcdef"


def _spec(**overrides: Any) -> ServerSpec:
    values: dict[str, Any] = {
        "name": "clock",
        "transport": "streamable-http",
        "url": "http://127.0.0.1:9/mcp",
    }
    values.update(overrides)
    return ServerSpec(**values)


def test_valid_specs_of_every_transport_are_accepted_with_documented_defaults() -> None:
    http = _spec()
    sse = _spec(transport="sse", url="https://mcp.example.com/sse")
    stdio = ServerSpec(name="calc_1-x", transport="stdio", command="python", args=("-m", "calc"))
    assert http.expose == "on-request"
    assert http.tool_timeout_secs == 30.0
    assert http.required is False
    assert sse.transport == "sse"
    assert stdio.args == ("-m", "calc")


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "a" * 33}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "dot.ted"}, "name"),
        ({"name": "ünïcode"}, "name"),
        ({"transport": "websocket"}, "transport"),
        ({"url": None}, "url"),
        ({"url": "ftp://host/mcp"}, "url"),
        ({"url": "http:///no-host"}, "url"),
        ({"url": "http://host:99999/mcp"}, "url"),
        ({"command": "python"}, "command"),
        ({"transport": "stdio", "url": None}, "command"),
        ({"transport": "stdio", "command": "python"}, "url"),
        ({"transport": "stdio", "url": None, "command": "python", "args": ("-m", 3)}, "args"),
        ({"headers": {"X-N": 1}}, "headers"),
        ({"env": {"": "x"}}, "env"),
        ({"expose": "sometimes"}, "expose"),
        ({"tool_timeout_secs": 0}, "tool_timeout_secs"),
        ({"tool_timeout_secs": -1.5}, "tool_timeout_secs"),
        ({"tool_timeout_secs": float("inf")}, "tool_timeout_secs"),
        ({"tool_timeout_secs": True}, "tool_timeout_secs"),
        ({"tool_timeouts": {"now": 0}}, "tool_timeouts"),
        ({"tool_timeouts": {"now": "5"}}, "tool_timeouts"),
        ({"required": "yes"}, "required"),
        ({"aliases": {"now": "has space"}}, "aliases"),
        ({"aliases": {"now": ""}}, "aliases"),
    ],
)
def test_invalid_spec_is_refused_naming_the_field(overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidMcpConfig) as info:
        _spec(**overrides)
    assert info.value.code == "invalid_mcp_config"
    assert info.value.status == 400
    assert info.value.param == param


def test_spec_round_trips_through_to_dict_and_from_dict() -> None:
    spec = _spec(
        headers={"Authorization": "Bearer ${CLOCK_TOKEN}", "X-Trace": "on"},
        env={"TZ": "UTC"},
        expose="always",
        tool_timeout_secs=12,
        tool_timeouts={"slow": 90},
        required=True,
        aliases={"now": "current_time"},
    )
    again = ServerSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert hash(again) == hash(spec)
    assert spec.timeout_for("slow") == 90.0
    assert spec.timeout_for("now") == 12.0


def test_from_dict_refuses_unknown_fields_and_missing_transport() -> None:
    data = _spec().to_dict()
    with pytest.raises(InvalidMcpConfig) as info:
        ServerSpec.from_dict({**data, "colour": "blue"})
    assert info.value.param == "colour"
    del data["transport"]
    with pytest.raises(InvalidMcpConfig):
        ServerSpec.from_dict(data)


def test_spec_mappings_cannot_be_changed_after_construction() -> None:
    headers = {"X-A": "1"}
    spec = _spec(headers=headers)
    headers["X-A"] = "2"
    assert spec.headers["X-A"] == "1"
    with pytest.raises(TypeError):
        spec.headers["X-A"] = "3"  # type: ignore[index]  # the point: the mapping is read-only


def test_references_are_resolved_from_the_given_environment() -> None:
    resolved = resolve_secrets(
        {"Authorization": "Bearer ${TOKEN}", "X-Pair": "${A}-${B}", "X-Plain": "$HOME ${not valid}"},
        {"TOKEN": SECRET, "A": "1", "B": "2"},
    )
    assert resolved == {"Authorization": f"Bearer {SECRET}", "X-Pair": "1-2", "X-Plain": "$HOME ${not valid}"}


def test_unknown_variable_is_an_error_naming_the_variable_but_no_value() -> None:
    with pytest.raises(UnresolvedSecret) as info:
        resolve_secrets({"Authorization": "Bearer ${MISSING_TOKEN}", "X-K": "${SET}"}, {"SET": SECRET})
    assert info.value.code == "unresolved_secret"
    assert info.value.variable == "MISSING_TOKEN"
    assert info.value.param == "Authorization"
    assert isinstance(info.value, InvalidMcpConfig)
    assert SECRET not in str(info.value)


def test_spec_written_with_references_never_contains_the_secret() -> None:
    environ = {"CLOCK_TOKEN": SECRET}
    spec = _spec(headers={"Authorization": "Bearer ${CLOCK_TOKEN}"}, env={"API_KEY": "${CLOCK_TOKEN}"})
    for text in (repr(spec), str(spec.redacted()), str(spec.to_dict())):
        assert SECRET not in text
        assert "${CLOCK_TOKEN}" in text
    assert resolve_secrets(spec.headers, environ)["Authorization"] == f"Bearer {SECRET}"


def test_literal_values_of_sensitive_keys_are_masked_in_redacted_view_and_repr() -> None:
    spec = _spec(
        headers={"authorization": f"Bearer {SECRET}", "X-Api-KEY": SECRET, "X-Request-Source": "smg"},
        env={"GITHUB_TOKEN": SECRET, "CLIENT_SECRET": f"{SECRET}${{X}}", "TZ": "UTC"},
    )
    shown = spec.redacted()
    assert shown["headers"] == {"authorization": "***", "X-Api-KEY": "***", "X-Request-Source": "smg"}
    assert shown["env"] == {"GITHUB_TOKEN": "***", "CLIENT_SECRET": "***", "TZ": "UTC"}
    assert SECRET not in repr(spec)
    assert SECRET not in str(shown)


@pytest.mark.parametrize(
    ("value", "kept"),
    [("${T}", True), ("Bearer ${T}", True), ("${A}${B}", True), ("Bearer abc", False), ("x${T}", False)],
)
def test_only_pure_references_of_sensitive_keys_are_printed(value: str, kept: bool) -> None:
    assert redact_mapping({"Authorization": value}) == {"Authorization": value if kept else "***"}


def test_invalid_spec_error_does_not_echo_header_values() -> None:
    with pytest.raises(InvalidMcpConfig) as info:
        _spec(headers={"Authorization": f"Bearer {SECRET}"}, url="ftp://x")
    assert SECRET not in str(info.value)
