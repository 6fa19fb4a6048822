"""The offline examples of docs/mcp.md run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"

pytestmark = pytest.mark.e2e


def _offline_examples() -> list[str]:
    section = DOC.read_text().split("## Try it offline", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_offline_examples_of_the_mcp_doc_succeed(tmp_path: Path) -> None:
    env = {**os.environ, "SMG_MCP_REGISTRY": str(tmp_path / "mcp.db")}
    env.pop("SMG_GATEWAY_URL", None)
    commands = _offline_examples()
    assert len(commands) >= 5
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "smg"
        argv = [sys.executable if a == "python" else a for a in argv]
        done = subprocess.run(
            [sys.executable, "-m", "smg", *argv[1:]], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
