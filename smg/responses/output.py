"""What a tool loop's result looks like as a Responses object: output items, status, usage.

Output order: one ``mcp_list_tools`` item per MCP server offered for the first time in the conversation,
then per executed round its text (a ``message``, when the model wrote any) and one ``mcp_call`` per call
(``output``, or an ``mcp_tool_execution_error`` whose text is what the model read; ``status``
``completed`` or ``failed``), then the last reply: its text as a
``message`` and the client's own calls as ``function_call`` items. Calls the model made of a name nobody
declared are answered to the model (an error result) but are no output item. A budget that stopped the
loop, or a reply cut by the worker (``finish_reason: "length"``), ends the response ``incomplete`` with
``incomplete_details.reason`` ``max_output_tokens``; the loop's own stop reason is ``smg.stop_reason``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smg.mcp.types import ToolInfo
from smg.responses.items import mcp_call_id, new_id, new_round_key
from smg.responses.request import ResponsesRequest
from smg.responses.text_format import echoed
from smg.routing.accumulator import AccumulatedCall, calls_of_message
from smg.routing.loop import LoopResult, LoopRound
from smg.routing.tools import ToolPlan


def list_tools_item(server: str, tools: Iterable[ToolInfo]) -> dict[str, Any]:
    """The ``mcp_list_tools`` item of ``server``: its tools offered to this request, with their hints."""
    return {
        "id": new_id("mcpl"),
        "type": "mcp_list_tools",
        "server_label": server,
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": t.input_schema or {"type": "object"},
                "annotations": {
                    "readOnlyHint": t.read_only,
                    "idempotentHint": t.idempotent,
                    "destructiveHint": t.destructive,
                },
            }
            for t in tools
        ],
        "error": None,
    }


def message_item(text: str) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def mcp_call_item(
    call: AccumulatedCall,
    tool_message: dict[str, Any],
    status: str,
    info: ToolInfo,
    *,
    approval_request_id: str | None = None,
    item_id: str | None = None,
) -> dict[str, Any]:
    """The ``mcp_call`` item of an executed call; ``approval_request_id`` when it ran on approval;
    ``item_id`` its id (default: a fresh one)."""
    ok = status == "ok"
    text = str(tool_message.get("content") or "")
    return {
        "id": item_id or new_id("mcp"),
        "type": "mcp_call",
        "server_label": info.server,
        "name": info.name,
        "arguments": call.arguments,
        "output": text if ok else None,
        # OpenAI's error object; the finer outcome (timeout, unavailable...) is in ``smg.tool_calls``.
        "error": None
        if ok
        else {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]},
        "status": "completed" if ok else "failed",
        "approval_request_id": approval_request_id,
    }


def round_items(done: LoopRound, plan: ToolPlan) -> list[dict[str, Any]]:
    """The output items of one executed round."""
    items = []
    text = done.assistant.get("content")
    if isinstance(text, str) and text:
        items.append(message_item(text))
    round_key = new_round_key()
    for call, message, record in zip(done.calls, done.tool_messages, done.records, strict=True):
        info = plan.tools.get(call.name)
        if info is not None:
            items.append(mcp_call_item(call, message, record.status, info, item_id=mcp_call_id(round_key)))
    return items


def final_items(
    result: LoopResult, plan: ToolPlan, gated: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The output items of the reply that ended the loop: its text, the client's calls and one
    ``mcp_approval_request`` per call of a ``gated`` tool (none of these after a budget stop: the
    gateway's calls of that reply did not run)."""
    message = result.reply["choices"][0]["message"]
    items = []
    text = message.get("content")
    if isinstance(text, str) and text:
        items.append(message_item(text))
    if result.reason in ("completed", "mixed_tool_calls"):
        for call in calls_of_message(message):
            info = plan.tools.get(call.name)
            if call.name in gated and info is not None:
                items.append(
                    {
                        "id": new_id("mcpr"),
                        "type": "mcp_approval_request",
                        "server_label": info.server,
                        "name": info.name,
                        "arguments": call.arguments,
                    }
                )
            elif plan.owner(call.name) == "client":
                items.append(
                    {
                        "id": new_id("fc"),
                        "type": "function_call",
                        "call_id": call.id or new_id("call"),
                        "name": call.name,
                        "arguments": call.arguments,
                        "status": "completed",
                    }
                )
    return items


def usage_of(usage: Any) -> dict[str, Any] | None:
    """A chat ``usage`` (summed over rounds) in the Responses shape."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": int(usage.get("total_tokens", prompt + completion)),
    }


def response_object(
    request: ResponsesRequest,
    result: LoopResult,
    output: list[dict[str, Any]],
    *,
    response_id: str,
    created_at: int,
) -> dict[str, Any]:
    """The whole Responses object, OpenAI's shape plus the ``smg`` extension object; ``created_at``:
    when the request arrived (Unix seconds)."""
    cut = result.reply["choices"][0].get("finish_reason") == "length"
    incomplete = cut or result.reason not in ("completed", "mixed_tool_calls")
    return pending_object(request, response_id=response_id, created_at=created_at) | {
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "output": output,
        "usage": usage_of(result.reply.get("usage")),
        "smg": result.ledger.extension(result.reason),
    }


def pending_object(request: ResponsesRequest, *, response_id: str, created_at: int) -> dict[str, Any]:
    """The Responses object of ``request`` before it has run: status ``queued``, no output (a
    background response as its create call answers it)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "background": request.background,
        "status": "queued",
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "metadata": request.metadata,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": True if request.parallel_tool_calls is None else request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "store": request.store,
        "temperature": request.temperature,
        "text": echoed(request.text_format),
        "tool_choice": "auto" if request.tool_choice is None else request.tool_choice,
        "tools": request.tools,
        "top_p": request.top_p,
        "truncation": "disabled",
        "usage": None,
        "user": request.user,
        "smg": None,
    }
