"""The client configuration snippets of docs/mcp-endpoint.md point at the endpoint with a data key, and
the Inspector command there is the version the Inspector test runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.mcp.endpoint.test_inspector import INSPECTOR

DOC = Path(__file__).resolve().parents[3] / "docs" / "mcp-endpoint.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_json_snippets_configure_the_endpoint_with_a_bearer_key() -> None:
    configs = [json.loads(block) for block in _blocks("json")]
    assert len(configs) == 2  # Claude Code's .mcp.json and Cursor's mcp.json
    for config in configs:
        (server,) = config["mcpServers"].values()
        assert server["url"] == "http://localhost:30000/mcp"
        assert re.fullmatch(r"Bearer \$\{(env:)?SMG_API_KEY\}", server["headers"]["Authorization"])


def test_the_command_lines_use_the_endpoint_the_key_and_the_tested_inspector() -> None:
    commands = " ".join(_blocks("console")).replace("\\\n", " ")
    assert "claude mcp add --transport http smg http://localhost:30000/mcp" in commands
    inspector = [line for line in commands.split("npx")[1:]]
    assert len(inspector) == 2
    for line in inspector:
        assert f"-y {INSPECTOR} --cli http://localhost:30000/mcp --transport http" in line
        assert '--header "Authorization: Bearer $SMG_API_KEY"' in line
    assert '--header "Authorization: Bearer $SMG_API_KEY"' in commands.split("npx")[0]
