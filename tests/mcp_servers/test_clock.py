"""The clock server, in process: readings, conversions, errors and annotations."""

from __future__ import annotations

import datetime as dt

from mcp import Client

from mcp_servers.clock import build_server
from tests.mcp_servers._helpers import text_of

FIXED = dt.datetime(2026, 1, 15, 12, 30, tzinfo=dt.UTC)


def _berlin_to_new_york(time: str) -> dict[str, str]:
    return {"time": time, "from_timezone": "Europe/Berlin", "to_timezone": "America/New_York"}


async def test_now_reports_injected_clock_in_requested_zone() -> None:
    async with Client(build_server(clock=lambda: FIXED)) as client:
        utc = await client.call_tool("now", {})
        berlin = await client.call_tool("now", {"timezone": "Europe/Berlin"})
    assert utc.structured_content == {
        "time": "2026-01-15T12:30:00+00:00",
        "timezone": "UTC",
        "utc_offset": "+00:00",
    }
    assert berlin.structured_content == {
        "time": "2026-01-15T13:30:00+01:00",
        "timezone": "Europe/Berlin",
        "utc_offset": "+01:00",
    }


async def test_now_uses_the_wall_clock_by_default() -> None:
    before = dt.datetime.now(dt.UTC)
    async with Client(build_server()) as client:
        result = await client.call_tool("now", {"timezone": "Asia/Tokyo"})
    assert result.structured_content is not None
    reading = dt.datetime.fromisoformat(result.structured_content["time"])
    assert reading.utcoffset() == dt.timedelta(hours=9)
    assert reading >= before


async def test_convert_reads_naive_time_in_source_zone_across_dst() -> None:
    async with Client(build_server()) as client:
        summer = await client.call_tool("convert", _berlin_to_new_york("2026-07-01T12:00:00"))
        winter = await client.call_tool("convert", _berlin_to_new_york("2026-01-01T12:00:00"))
    assert summer.structured_content is not None and winter.structured_content is not None
    assert summer.structured_content["time"] == "2026-07-01T06:00:00-04:00"
    assert winter.structured_content["time"] == "2026-01-01T06:00:00-05:00"


async def test_convert_keeps_an_explicit_offset() -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool(
            "convert", {"time": "2026-03-01T10:00:00+05:30", "from_timezone": "UTC", "to_timezone": "UTC"}
        )
    assert result.structured_content is not None
    assert result.structured_content["time"] == "2026-03-01T04:30:00+00:00"


async def test_unknown_timezone_is_a_tool_error_naming_it() -> None:
    async with Client(build_server()) as client:
        now = await client.call_tool("now", {"timezone": "Mars/Olympus_Mons"})
        convert = await client.call_tool(
            "convert", {"time": "2026-01-01T00:00:00", "from_timezone": "UTC", "to_timezone": "/etc/passwd"}
        )
    assert now.is_error and "Mars/Olympus_Mons" in text_of(now)
    assert convert.is_error and "/etc/passwd" in text_of(convert)


async def test_unparseable_time_is_a_tool_error() -> None:
    async with Client(build_server()) as client:
        result = await client.call_tool(
            "convert", {"time": "next tuesday", "from_timezone": "UTC", "to_timezone": "UTC"}
        )
    assert result.is_error
    assert "next tuesday" in text_of(result)


async def test_tools_are_read_only_and_closed_world() -> None:
    async with Client(build_server()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"now", "convert"}
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.annotations.open_world_hint is False
    assert tools["convert"].annotations is not None and tools["convert"].annotations.idempotent_hint is True
    assert tools["now"].annotations is not None and tools["now"].annotations.idempotent_hint is False
