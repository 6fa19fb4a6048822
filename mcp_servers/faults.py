"""`faults`: misbehaving tools for testing the gateway's tool loop.

Tools (all closed-world; "read-only" means no state outside the call changes):

- `echo(text)` -> `text` [read-only, idempotent].
- `LONG_TOOL_NAME` (exactly 70 characters) `(text)` -> `text` [read-only, idempotent].
- `pid()` -> this server's process id [read-only, idempotent].
- `sleep(seconds, label="")` -> JSON `{"label", "start", "end", "pid"}` (`time.time()` values taken
  around a non-blocking sleep, so concurrent calls overlap) [read-only, not idempotent].
- `flaky(p, seed=None)` -> succeeds, or fails (`is_error`) with probability `p`; with a `seed` the
  draw is deterministic [read-only; idempotent only with a seed, so not declared idempotent].
- `crash()` -> never answers: terminates the server process at once with `os._exit(1)` [destructive].
- `huge(size_bytes)` -> an ASCII string of exactly `size_bytes` bytes (at most `MAX_HUGE_BYTES`),
  as text content only (no structured copy) [read-only, idempotent].
- `hang()` -> never returns (waits on an event nobody sets); only cancellation ends it [read-only].
- `garbage(seed=0)` -> a deterministic, valid-JSON but hostile result: a text block full of C0/C1
  control characters, ANSI escapes, BOM, bidi overrides, zero-width and combining characters, a
  noncharacter and an astral emoji; a text block of random bytes decoded as Latin-1 (mojibake); an
  `image/png` block whose data is not base64; and `structured_content` although the tool declares
  no output schema [read-only, idempotent]. (Lone surrogates are left out: they cannot be encoded
  as UTF-8, so the SDK would fail before anything reached the wire.)
- `progress(steps, label)` -> sends progress notifications `1..steps` of `steps` (message `"step i"`),
  then never returns, like `hang`; a cancelled call is recorded under `label` [read-only].
- `cancelled(label)` -> whether a `progress` call with that `label` was cancelled (the server saw the
  cancellation) [read-only].
- `set_tools(extra)` -> replaces the set of dynamically registered echo tools with `extra`, then
  announces `notifications/tools/list_changed`: to every `subscriptions/listen` stream that asked for
  it (2026-07-28 clients) and on the calling session (handshake-era clients) [destructive: it
  removes earlier dynamic tools; idempotent].

Besides tools, one resource, `faults://about` (text/plain), one resource template
`faults://echo/{text}` (its text is `text`), and one prompt, `greet(name)` (one user message
`"Say hello to NAME."`), for clients that list and read them.

Run: `python -m mcp_servers.faults --transport stdio|streamable-http|sse [--host H] [--port N]`.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Sequence
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts on Python < 3.12

from mcp_servers._run import run_cli

__all__ = ["BUILTIN_TOOLS", "LONG_TOOL_NAME", "MAX_HUGE_BYTES", "MAX_SLEEP_SECONDS", "build_server", "main"]

LONG_TOOL_NAME = "this_tool_name_is_deliberately_seventy_characters_long_for_testing_xxx"
MAX_HUGE_BYTES = 50 * 1024 * 1024
MAX_SLEEP_SECONDS = 3600.0
MAX_DYNAMIC_TOOLS = 100
BUILTIN_TOOLS = frozenset(
    {"echo", LONG_TOOL_NAME, "pid", "sleep", "flaky", "crash", "huge", "hang", "garbage", "set_tools"}
    | {"progress", "cancelled"}
)
_TOOL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

_READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
_READ_ONLY_VARYING = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)

_ODD_TEXT = (
    "NUL[\x00] BEL[\x07] BS[\x08] VT[\x0b] FF[\x0c] CR[\r] ESC[\x1b[31mred\x1b[0m] DEL[\x7f] "
    "C1[\x85\x9b] REPLACEMENT[\ufffd] BOM[\ufeff] ZWSP[\u200b] RLO[\u202eevil\u202c] "
    "NONCHAR[\uffff] ASTRAL[\U0001f4a9] COMBINING[e\u0301\u0301\u0301] LS[\u2028]"
)


class SleepRecord(TypedDict):
    """When one `sleep` call started and ended, in `time.time()` seconds, and in which process."""

    label: str
    start: float
    end: float
    pid: int


class SetToolsResult(TypedDict):
    """Dynamic tool names after `set_tools`, and what the call changed."""

    tools: list[str]
    added: list[str]
    removed: list[str]


def _echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


def build_server() -> MCPServer[Any]:
    """Build the faults server. Dynamic tools live on this instance only."""
    server: MCPServer[Any] = MCPServer("faults", instructions="Deliberately misbehaving tools for tests.")
    dynamic: set[str] = set()

    server.add_tool(_echo, name="echo", annotations=_READ_ONLY)
    server.add_tool(
        _echo,
        name=LONG_TOOL_NAME,
        description="Echo `text`; the name is 70 characters.",
        annotations=_READ_ONLY,
    )

    @server.tool(annotations=_READ_ONLY)
    def pid() -> int:
        """Return the server's process id."""
        return os.getpid()

    @server.tool(annotations=_READ_ONLY_VARYING)
    async def sleep(seconds: float, label: str = "") -> SleepRecord:
        """Sleep `seconds` (0-3600) without blocking other calls; report start/end times and pid."""
        if not 0 <= seconds <= MAX_SLEEP_SECONDS:
            raise ToolError(f"seconds must be between 0 and {MAX_SLEEP_SECONDS:g}, got {seconds}")
        start = time.time()
        await anyio.sleep(seconds)
        return SleepRecord(label=label, start=start, end=time.time(), pid=os.getpid())

    @server.tool(annotations=_READ_ONLY_VARYING)
    def flaky(p: float, seed: int | None = None) -> str:
        """Fail with probability `p` (0-1); a `seed` makes the outcome deterministic."""
        if not 0 <= p <= 1:
            raise ToolError(f"p must be between 0 and 1, got {p}")
        draw = random.Random(seed).random()
        if draw < p:
            raise ToolError(f"flaky failure: draw {draw:.4f} < p {p}")
        return f"ok: draw {draw:.4f} >= p {p}"

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
        )
    )
    def crash() -> str:
        """Terminate the server process immediately with exit status 1; the call never answers."""
        os._exit(1)

    @server.tool(annotations=_READ_ONLY, structured_output=False)
    def huge(size_bytes: int) -> str:
        """Return an ASCII string of exactly `size_bytes` bytes (at most 50 MiB)."""
        if not 0 <= size_bytes <= MAX_HUGE_BYTES:
            raise ToolError(f"size_bytes must be between 0 and {MAX_HUGE_BYTES}, got {size_bytes}")
        return "x" * size_bytes

    @server.tool(annotations=_READ_ONLY_VARYING)
    async def hang() -> str:
        """Never return; only cancelling the call ends it."""
        await anyio.Event().wait()
        raise AssertionError("unreachable: nobody sets the event")

    @server.tool(annotations=_READ_ONLY)
    def garbage(seed: int = 0) -> CallToolResult:
        """Return hostile but valid JSON: control characters, mojibake, bad base64, unschema'd data."""
        mojibake = random.Random(seed).randbytes(256).decode("latin-1")
        return CallToolResult(
            content=[
                TextContent(type="text", text=_ODD_TEXT),
                TextContent(type="text", text=mojibake),
                ImageContent(type="image", data="%%% not base64 %%%", mime_type="image/png"),
            ],
            structured_content={"unexpected": [1, "two", None, {"nested": [[[]]]}], "\x00key": "\x1b[2J"},
        )

    @server.resource("faults://about", mime_type="text/plain")
    def about() -> str:
        """What this server is for."""
        return "faults: deliberately misbehaving tools for tests"

    @server.resource("faults://echo/{text}", mime_type="text/plain")
    def echo_resource(text: str) -> str:
        """A resource whose text is its URI's last segment."""
        return text

    @server.prompt()
    def greet(name: str) -> str:
        """Ask the model to greet `name`."""
        return f"Say hello to {name}."

    cancelled_labels: set[str] = set()

    @server.tool(name="progress", annotations=_READ_ONLY_VARYING)
    async def progress_tool(steps: int, label: str, ctx: Context) -> str:
        """Report progress 1..`steps`, then wait until cancelled; the cancellation is recorded."""
        try:
            for step in range(1, steps + 1):
                await ctx.report_progress(step, steps, f"step {step}")
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            cancelled_labels.add(label)
            raise
        raise AssertionError("unreachable: nobody sets the event")

    @server.tool(annotations=_READ_ONLY_VARYING)
    def cancelled(label: str) -> bool:
        """Whether a `progress` call with `label` was cancelled."""
        return label in cancelled_labels

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    async def set_tools(extra: list[str], ctx: Context) -> SetToolsResult:
        """Make the dynamic echo tools exactly `extra` and announce tools/list_changed."""
        wanted = set(extra)
        if len(wanted) > MAX_DYNAMIC_TOOLS:
            raise ToolError(f"at most {MAX_DYNAMIC_TOOLS} dynamic tools, got {len(wanted)}")
        if bad := sorted(name for name in wanted if not _TOOL_NAME.match(name)):
            raise ToolError(f"invalid tool names {bad}: use 1-128 characters from A-Z a-z 0-9 _ - .")
        if clash := sorted(wanted & BUILTIN_TOOLS):
            raise ToolError(f"names {clash} belong to built-in tools")
        added, removed = sorted(wanted - dynamic), sorted(dynamic - wanted)
        for name in removed:
            server.remove_tool(name)
            dynamic.discard(name)
        for name in added:
            server.add_tool(
                _echo, name=name, description=f"Dynamic echo tool {name!r}.", annotations=_READ_ONLY
            )
            dynamic.add(name)
        await ctx.notify_tools_changed()
        await ctx.request_context.session.send_tool_list_changed()
        return SetToolsResult(tools=sorted(dynamic), added=added, removed=removed)

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see `mcp_servers._run` for the contract."""
    run_cli(lambda _args: build_server(), name="faults", argv=argv)


if __name__ == "__main__":
    main()
