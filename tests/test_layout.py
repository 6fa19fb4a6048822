"""The shape ADR 0001/0010/0012 promise, beyond what import-linter sees: what importing the workers' HTTP
client actually loads at run time (lazy package imports included), and module size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import smg

PACKAGE = Path(smg.__file__).resolve().parent
MAX_LINES = 300


def _loaded_after(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    code = f"{statement}; import sys; print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded: list[str] = ast.literal_eval(out.stdout)
    return loaded


def test_the_workers_http_client_loads_no_mcp_module_and_no_mcp_sdk() -> None:
    assert _loaded_after("import smg.workers.http1", ("smg.mcp", "mcp")) == []


def test_the_settings_groups_load_neither_mcp_nor_the_settings_sources() -> None:
    loaded = _loaded_after(
        "from smg.settings import Settings; Settings()", ("smg.mcp", "mcp", "pydantic_settings", "yaml")
    )
    assert loaded == []


def test_no_module_of_the_package_is_over_300_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
    assert len(sizes) > 100  # the walk found the package
