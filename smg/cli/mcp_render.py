"""How ``smg mcp`` prints: tables (boxed on a terminal, plain rows in a pipe: `smg.cli.tables`), ``--json``
for scripts.

Everything printed comes from the wire shapes of the admin API (plain dicts), whichever the target. Text
that an MCP server wrote (descriptions, results, errors) is shown with control and format characters
escaped, so a hostile server cannot drive the terminal.
"""

from __future__ import annotations

import json
import shlex
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from smg.cli.tables import print_table
from smg.errors import SmgError

_console = Console()
_DESCRIPTION_CHARS = 72


def clean(value: object) -> str:
    """``value`` as one printable string: control/format characters (but newline and tab) escaped."""
    text = "" if value is None else str(value)
    return "".join(
        ch
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def warn(message: str) -> None:
    print(f"smg: warning: {clean(message)}", file=sys.stderr)


def _endpoint(view: Mapping[str, Any]) -> str:
    if view.get("transport") == "stdio":
        return shlex.join([str(view.get("command") or ""), *map(str, view.get("args") or [])])
    return str(view.get("url") or "")


def _status(view: Mapping[str, Any]) -> Mapping[str, Any]:
    status = view.get("status")
    return status if isinstance(status, Mapping) else {}


def error(message: str) -> None:
    print(f"smg: error: {clean(message)}", file=sys.stderr)


def failure(exc: SmgError, *, as_json: bool) -> int:
    """A failed command: the findings it carries (if any), then the error line. Returns the exit code 1."""
    found = [f if isinstance(f, Mapping) else f.to_dict() for f in getattr(exc, "findings", None) or []]
    if found and as_json:
        print_json({"server": None, "findings": found, "saved": False})
    elif found:
        _findings(found)
    error(exc.message)
    return 1


def servers(views: Sequence[Mapping[str, Any]], *, as_json: bool) -> int:
    if as_json:
        print_json({"servers": views})
    elif not views:
        _console.print("no MCP servers registered")
    else:
        _servers_table(views)
    return 0


def _servers_table(views: Sequence[Mapping[str, Any]]) -> None:
    rows = [
        [
            clean(view.get("name")),
            clean(view.get("transport")),
            clean(_endpoint(view)),
            clean(view.get("expose")),
            "yes" if view.get("required") else "no",
            clean(_status(view).get("state", "-")),
            clean(_status(view).get("tools", "-")),
        ]
        for view in views
    ]
    print_table(_console, ("name", "transport", "endpoint", "expose", "required", "state", "tools"), rows)


def _pairs(mapping: object) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return "-"
    return "\n".join(f"{k}={v}" for k, v in mapping.items())


def server(view: Mapping[str, Any], *, as_json: bool) -> int:
    if as_json:
        print_json(view)
        return 0
    rows = [[key, clean(view.get(key))] for key in ("name", "transport")]
    rows += [
        ["endpoint", clean(_endpoint(view))],
        ["env", clean(_pairs(view.get("env")))],
        ["headers", clean(_pairs(view.get("headers")))],
        ["expose", clean(view.get("expose"))],
        ["tool timeout", clean(f"{view.get('tool_timeout_secs')} s")],
        ["tool timeouts", clean(_pairs(view.get("tool_timeouts")))],
        ["aliases", clean(_pairs(view.get("aliases")))],
        ["required", "yes" if view.get("required") else "no"],
    ]
    rows += [[key, clean("-" if value is None else value)] for key, value in _status(view).items()]
    print_table(_console, ("field", "value"), rows, header=False)
    if isinstance(view.get("tools"), list):
        _tools_table([{"server": view.get("name"), **t} for t in view["tools"]])
    return 0


def removed(result: Mapping[str, Any], *, as_json: bool) -> int:
    if as_json:
        print_json(result)
    else:
        print(f"removed MCP server {clean(result.get('removed'))}")
    return 0


def _hints(tool: Mapping[str, Any]) -> str:
    shown = [hint for hint in ("read_only", "idempotent", "destructive") if tool.get(hint)]
    return ", ".join(shown) or "-"


def _first_line(text: object) -> str:
    line = clean(text).strip().split("\n", 1)[0]
    return line if len(line) <= _DESCRIPTION_CHARS else line[: _DESCRIPTION_CHARS - 1] + "…"


def tools(listing: Sequence[Mapping[str, Any]], *, as_json: bool) -> int:
    if as_json:
        print_json({"tools": listing})
    elif not listing:
        _console.print("no tools")
    else:
        _tools_table(listing)
    return 0


def _tools_table(listing: Sequence[Mapping[str, Any]]) -> None:
    rows = [
        [
            clean(tool.get("server")),
            clean(tool.get("name")),
            clean(tool.get("exposed_name")),
            _hints(tool),
            _first_line(tool.get("description")),
        ]
        for tool in listing
    ]
    print_table(_console, ("server", "tool", "exposed as", "hints", "description"), rows)


def added(result: Mapping[str, Any], *, as_json: bool) -> int:
    """``smg mcp add``'s report: every finding, then whether the server was saved."""
    if as_json:
        print_json(result)
        return 0
    _findings(result.get("findings") or [])
    name = clean((result.get("server") or {}).get("name"))
    if result.get("saved"):
        print(f"registered MCP server {name}")
    else:
        print(f"dry run: MCP server {name} passed validation; nothing was saved")
    return 0


def _findings(found: Sequence[Mapping[str, Any]]) -> None:
    if not found:
        return
    rows = [["!" if f.get("blocking") else "", clean(f.get("kind")), clean(f.get("message"))] for f in found]
    print_table(_console, ("", "kind", "finding"), rows)


def checks(rows: Sequence[Mapping[str, Any]], *, as_json: bool) -> int:
    """``smg mcp check``: exit code 1 when any server failed."""
    if as_json:
        print_json({"servers": rows})
    elif not rows:
        _console.print("no MCP servers registered")
    else:
        _checks_table(rows)
    failed = [clean(row.get("name")) for row in rows if not row.get("ok")]
    if failed:
        error(f"{len(failed)} of {len(rows)} MCP server(s) failed the check: {', '.join(failed)}")
        return 1
    return 0


def _checks_table(rows: Sequence[Mapping[str, Any]]) -> None:
    cells = [
        [
            clean(row.get("name")),
            "yes" if row.get("ok") else "NO",
            clean(row.get("state")),
            clean(row.get("tools")),
            clean(row.get("error") or "-"),
        ]
        for row in rows
    ]
    print_table(_console, ("name", "ok", "state", "tools", "error"), cells)


def called(result: Mapping[str, Any], *, as_json: bool) -> int:
    """A tool call's result (its text, control characters escaped); exit code 1 unless its status is ok."""
    if as_json:
        print_json(result)
    else:
        print(clean(result.get("text")))
    if result.get("status") == "ok":
        return 0
    error(
        f"tool {result.get('tool')!r} of MCP server {result.get('server')!r} failed: {result.get('status')}"
    )
    return 1
