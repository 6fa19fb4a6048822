"""`clock`: current time and time-zone conversion over IANA zones (stdlib `zoneinfo`).

Tools (all read-only, closed-world):

- `now(timezone="UTC")` -> `{"time": ISO-8601 with offset, "timezone": IANA name, "utc_offset": "+HH:MM"}`.
  Not idempotent: every call reads the wall clock.
- `convert(time, from_timezone, to_timezone)` -> the same shape, for `time` in `to_timezone`.
  Idempotent. A naive `time` is wall-clock time in `from_timezone` (for an ambiguous or skipped
  DST wall time, the earlier offset, `fold=0`); a `time` with an explicit offset keeps that offset.

Unknown zones and unparseable times raise `ToolError` (an `is_error` result naming the bad value).

Run: `python -m mcp_servers.clock --transport stdio|streamable-http|sse [--host H] [--port N]`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts on Python < 3.12

from mcp_servers._run import run_cli

__all__ = ["ClockReading", "build_server", "main"]


class ClockReading(TypedDict):
    """A point in time as seen in one time zone."""

    time: str
    timezone: str
    utc_offset: str


def build_server(*, clock: Callable[[], dt.datetime] | None = None) -> MCPServer[Any]:
    """Build the clock server.

    `clock` returns the current time as an aware datetime (default: `datetime.now(UTC)`); tests
    inject a fixed one.
    """
    read_clock = clock or (lambda: dt.datetime.now(dt.UTC))
    server: MCPServer[Any] = MCPServer("clock", instructions="Current time and time-zone conversion.")

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        )
    )
    def now(timezone: str = "UTC") -> ClockReading:
        """Return the current time in `timezone` (an IANA name such as "Europe/Berlin")."""
        return _reading(read_clock().astimezone(_zone(timezone)), timezone)

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        )
    )
    def convert(time: str, from_timezone: str, to_timezone: str) -> ClockReading:
        """Convert an ISO-8601 `time` from `from_timezone` to `to_timezone`.

        A time without an offset is read as wall-clock time in `from_timezone`; a time with an
        offset keeps it (`from_timezone` must still be a valid zone).
        """
        source, target = _zone(from_timezone), _zone(to_timezone)
        try:
            parsed = dt.datetime.fromisoformat(time)
        except ValueError:
            raise ToolError(
                f"cannot parse time {time!r}: use ISO-8601 such as '2026-03-01T14:30:00'"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=source)
        return _reading(parsed.astimezone(target), to_timezone)

    return server


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: names that are not zone keys at all, e.g. absolute paths.
        raise ToolError(
            f"unknown timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def _reading(moment: dt.datetime, zone_name: str) -> ClockReading:
    offset = moment.strftime("%z")
    return ClockReading(time=moment.isoformat(), timezone=zone_name, utc_offset=f"{offset[:3]}:{offset[3:]}")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see `mcp_servers._run` for the contract."""
    run_cli(lambda _args: build_server(), name="clock", argv=argv)


if __name__ == "__main__":
    main()
