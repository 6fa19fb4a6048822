"""Turn mcp SDK values into smg.mcp's plain ones (`ToolInfo`, result text); SDK types stop here."""

from __future__ import annotations

import json

from mcp.types import CallToolResult, EmbeddedResource, TextContent, TextResourceContents, Tool

from smg.mcp.types import ToolInfo


def tool_info(server: str, tool: Tool) -> ToolInfo:
    """`ToolInfo` of one listed tool. Absent hints follow the MCP defaults (not read-only, not idempotent,
    destructive unless read-only)."""
    hints = tool.annotations
    read_only = bool(hints is not None and hints.read_only_hint)
    destructive = not read_only and (hints is None or hints.destructive_hint is not False)
    return ToolInfo(
        server=server,
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        read_only=read_only,
        idempotent=bool(hints is not None and hints.idempotent_hint),
        destructive=destructive,
        title=tool.title,
        annotations=None if hints is None else hints.model_dump(by_alias=True, exclude_none=True),
    )


def result_text(result: CallToolResult) -> str:
    """What the model reads: text blocks joined by newlines; structured content as JSON when there is
    no text; other blocks as a short placeholder naming their type."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource) and isinstance(block.resource, TextResourceContents):
            parts.append(block.resource.text)
        else:
            mime = getattr(block, "mime_type", None)
            parts.append(f"[{block.type} content{f' ({mime})' if mime else ''} omitted]")
    if not any(isinstance(b, TextContent) for b in result.content) and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


def truncate_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (on a character boundary) followed by a marker
    the model can read, or ``text`` itself when it fits or ``max_bytes`` is 0 (no limit)."""
    encoded = text.encode()
    if max_bytes <= 0 or len(encoded) <= max_bytes:
        return text
    kept = encoded[:max_bytes].decode(errors="ignore")
    return (
        f"{kept}\n[smg: tool output truncated: {len(encoded)} bytes, "
        f"only the first {max_bytes} bytes are shown]"
    )
