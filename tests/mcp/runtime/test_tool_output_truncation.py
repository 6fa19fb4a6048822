"""Tool output over the limit is cut at a whole character and says so."""

from __future__ import annotations

from smg.mcp.runtime.convert import truncate_text


def test_truncated_tool_output_keeps_whole_characters_and_says_so() -> None:
    text = "é" * 10  # 20 bytes

    cut = truncate_text(text, 5)

    assert cut.startswith("éé\n")
    assert cut.endswith("[smg: tool output truncated: 20 bytes, only the first 5 bytes are shown]")
    assert truncate_text(text, 20) is text
    assert truncate_text(text, 0) is text
