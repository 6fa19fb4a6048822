"""How ``smg mcp`` prints: rich tables for people, ``--json`` for scripts.

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
from rich.table import Table
from rich.text import Text

from smg.errors import SmgError

_console = Console()
_DESCRIPTION_CHARS = 72


def _table(*columns: str) -> Table:
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")  # nothing is cut off on a narrow terminal
    return table


def clean(value: object) -> str:
    """``value`` as one printable string: control/format characters (but newline and tab) escaped."""
    text = "" if value is None else str(value)
    return "".join(
        ch
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _cell(value: object) -> Text:
    # Text, not str: a "[...]" in a server's output is data, not rich markup.
    return Text(clean(value))


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
        _console.print(_servers_table(views))
    return 0


def _servers_table(views: Sequence[Mapping[str, Any]]) -> Table:
    table = _table("name", "transport", "endpoint", "expose", "required", "state", "tools")
    for view in views:
        status = _status(view)
        table.add_row(
            _cell(view.get("name")),
            _cell(view.get("transport")),
            _cell(_endpoint(view)),
            _cell(view.get("expose")),
            "yes" if view.get("required") else "no",
            _cell(status.get("state", "-")),
            _cell(status.get("tools", "-")),
        )
    return table


def _pairs(mapping: object) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return "-"
    return "\n".join(f"{k}={v}" for k, v in mapping.items())


def server(view: Mapping[str, Any], *, as_json: bool) -> int:
    if as_json:
        print_json(view)
        return 0
    table = _table("field", "value")
    table.show_header = False
    for key in ("name", "transport"):
        table.add_row(key, _cell(view.get(key)))
    table.add_row("endpoint", _cell(_endpoint(view)))
    table.add_row("env", _cell(_pairs(view.get("env"))))
    table.add_row("headers", _cell(_pairs(view.get("headers"))))
    table.add_row("expose", _cell(view.get("expose")))
    table.add_row("tool timeout", _cell(f"{view.get('tool_timeout_secs')} s"))
    table.add_row("tool timeouts", _cell(_pairs(view.get("tool_timeouts"))))
    table.add_row("aliases", _cell(_pairs(view.get("aliases"))))
    table.add_row("required", "yes" if view.get("required") else "no")
    for key, value in _status(view).items():
        table.add_row(key, _cell("-" if value is None else value))
    _console.print(table)
    if isinstance(view.get("tools"), list):
        _console.print(_tools_table([{"server": view.get("name"), **t} for t in view["tools"]]))
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
        _console.print(_tools_table(listing))
    return 0


def _tools_table(listing: Sequence[Mapping[str, Any]]) -> Table:
    table = _table("server", "tool", "exposed as", "hints", "description")
    for tool in listing:
        table.add_row(
            _cell(tool.get("server")),
            _cell(tool.get("name")),
            _cell(tool.get("exposed_name")),
            _hints(tool),
            _cell(_first_line(tool.get("description"))),
        )
    return table


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
    table = _table("", "kind", "finding")
    for finding in found:
        mark = "!" if finding.get("blocking") else ""
        table.add_row(mark, _cell(finding.get("kind")), _cell(finding.get("message")))
    _console.print(table)


def checks(rows: Sequence[Mapping[str, Any]], *, as_json: bool) -> int:
    """``smg mcp check``: exit code 1 when any server failed."""
    if as_json:
        print_json({"servers": rows})
    elif not rows:
        _console.print("no MCP servers registered")
    else:
        _console.print(_checks_table(rows))
    failed = [clean(row.get("name")) for row in rows if not row.get("ok")]
    if failed:
        error(f"{len(failed)} of {len(rows)} MCP server(s) failed the check: {', '.join(failed)}")
        return 1
    return 0


def _checks_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = _table("name", "ok", "state", "tools", "error")
    for row in rows:
        table.add_row(
            _cell(row.get("name")),
            "yes" if row.get("ok") else "NO",
            _cell(row.get("state")),
            _cell(row.get("tools")),
            _cell(row.get("error") or "-"),
        )
    return table


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
