"""What a streaming tool loop's client reads, written as the loop goes: the seam between the loop
(`stream_loop.StreamRun`: rounds, upstream streams, budgets, tool calls) and a wire format.

`StreamRun` calls a `LoopWriter` at each step and yields what it returns: the chat wire format is
`ChatWriter` (chunks, progress comments, ``data: [DONE]``); the Responses API has its own
(`smg.responses.live`), so both read the worker's streams and run rounds through one loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from smg.errors import SmgError
from smg.protocol import SSE_DONE, sse_error_event
from smg.routing.accumulator import AccumulatedCall
from smg.routing.budgets import CallRecord, LoopLedger, StopReason, stop_notice
from smg.routing.metering import Generation
from smg.routing.stream_chunks import ClientChunks, client_deltas, progress_comment


class LoopWriter(Protocol):
    """Turns the steps of a streaming loop into the client's bytes. Called in this order: per round,
    `seen` for every upstream chunk, `started` and `content` as its choices come; then either
    `executing` and `executed` (the round's gateway calls ran; a new round follows) or `finished`
    (the loop ended); `failed` instead when the stream breaks after the first byte."""

    def seen(self, chunk: dict[str, Any]) -> None:
        """An upstream chunk (any: the first one carries the completion's id and model)."""
        ...

    def started(self) -> bytes:
        """An upstream chunk with a choice arrived."""
        ...

    def content(self, text: str) -> bytes:
        """A content delta of the current round, as the worker sent it (never empty)."""
        ...

    def executing(self, iteration: int, calls: Sequence[AccumulatedCall]) -> bytes:
        """The round's calls (all the gateway's) are about to run."""
        ...

    def executed(
        self,
        assistant: dict[str, Any],
        calls: Sequence[AccumulatedCall],
        tool_messages: Sequence[dict[str, Any]],
        records: Sequence[CallRecord],
    ) -> bytes:
        """The round ran: its assistant message, and per call (in call order) its ``tool`` message and
        record."""
        ...

    def finished(
        self,
        reason: StopReason,
        client: Sequence[AccumulatedCall],
        finish_reason: str | None,
        ledger: LoopLedger,
    ) -> bytes:
        """The loop ended with ``reason``: the last round's client-owned calls (returned, not run), the
        worker's ``finish_reason`` of that round, the ledger (usage, records)."""
        ...

    def failed(self, exc: SmgError) -> bytes:
        """The stream broke after its first byte; the last bytes the client gets."""
        ...


class ChatWriter:
    """The chat completions stream of a tool loop (see `stream_loop`): one role chunk, the content
    deltas, SSE comments for tool rounds and calls, the client's calls whole at the end, a final chunk
    with the ``finish_reason`` and the ``smg`` extension, ``data: [DONE]``."""

    def __init__(
        self, model: str, report: Generation, clock: Callable[[], float], *, include_usage: bool
    ) -> None:
        self._out = ClientChunks(model, report, clock)
        self._include_usage = include_usage

    def seen(self, chunk: dict[str, Any]) -> None:
        self._out.seen(chunk)

    def started(self) -> bytes:
        return self._out.role()

    def content(self, text: str) -> bytes:
        return self._out.tokens({"content": text})

    def executing(self, iteration: int, calls: Sequence[AccumulatedCall]) -> bytes:
        return f": smg tool_round iteration={iteration} calls={len(calls)}\n\n".encode()

    def executed(
        self,
        assistant: dict[str, Any],
        calls: Sequence[AccumulatedCall],
        tool_messages: Sequence[dict[str, Any]],
        records: Sequence[CallRecord],
    ) -> bytes:
        return b"".join(progress_comment(record) for record in records)

    def finished(
        self,
        reason: StopReason,
        client: Sequence[AccumulatedCall],
        finish_reason: str | None,
        ledger: LoopLedger,
    ) -> bytes:
        out = self._out.role()
        if client:
            finish = "tool_calls"
            out += self._out.tokens({"tool_calls": client_deltas(list(client))})
        elif reason == "completed":
            finish = finish_reason or "stop"
        else:
            finish = "stop"
            notice = stop_notice(reason, ledger)
            out += self._out.tokens({"content": f"\n\n{notice}" if self._out.content_sent else notice})
        extension = {"smg": ledger.extension(reason)}
        if self._include_usage:
            out += self._out.chunk({}, finish)
            usage = ledger.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            out += self._out.event({"choices": [], "usage": usage} | extension)
        else:
            out += self._out.chunk({}, finish, extension)
        return out + SSE_DONE

    def failed(self, exc: SmgError) -> bytes:
        return sse_error_event(exc) + SSE_DONE
