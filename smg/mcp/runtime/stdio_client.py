"""`bounded_stdio_client`: the mcp SDK's stdio transport with a reader that holds at most one message's
limit of the server's stdout.

The child is spawned, written to and stopped exactly as the SDK's `stdio_client` does it (its own
helpers: a new session/process group, close stdin, wait, then kill the group), so only reading differs.
The SDK reads a line whole, however long, and parses it; here stdout is read in bounded chunks and split
with `LineSplitter`. A line over the limit streams past while only its edges are kept, then:

- a response (its id found): the caller gets a JSON-RPC error ``MESSAGE_TOO_LARGE`` for that id, as
  soon as the first bytes show it (else once the line ends); the session goes on;
- a request or notification from the server: dropped (a request is left unanswered; the server's own
  timeout ends it);
- anything else: dropped, and `MessageTooLarge` goes into the read stream as the SDK does with a line
  it cannot parse (the session goes on; a caller whose response it was waits for its timeout).

Lines within the limit are parsed from bytes, so invalid UTF-8 fails that message only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import TextIO

import anyio
import anyio.lowlevel
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.stdio import (
    _WRITER_FLUSH_TIMEOUT,
    _aclose_all,
    _create_platform_compatible_process,
    _drain_stdout,
    _get_executable_command,
    _stop_server_process,
    get_default_environment,
)
from mcp.shared.message import SessionMessage
from mcp.types import jsonrpc_message_adapter

from smg.mcp.runtime.framing import (
    Ended,
    Kind,
    Line,
    LineSplitter,
    MessageTooLarge,
    Oversized,
    Started,
    too_large,
)

__all__ = ["bounded_stdio_client"]

logger = logging.getLogger("smg.mcp")
_READ_BYTES = 256 * 1024


@asynccontextmanager
async def bounded_stdio_client(
    server: StdioServerParameters, *, limit: int, name: str = "", errlog: TextIO = sys.stderr
) -> AsyncGenerator[TransportStreams, None]:
    """Spawn ``server`` and connect to it over stdin/stdout, reading messages of at most ``limit``
    bytes (see the module docstring for longer ones). ``name`` names the server in log lines.

    Raises OSError when the process cannot be spawned, ValueError for invalid spawn parameters."""
    command = await _get_executable_command(server.command)
    process = await _create_platform_compatible_process(
        command=command,
        args=server.args,
        env=get_default_environment() | (server.env or {}),
        errlog=errlog,
        cwd=server.cwd,
    )
    # The spawn succeeded: no awaits until the task group is entered, or a cancellation in the gap
    # would leak the live process.
    read_stream_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_stream_reader = anyio.create_memory_object_stream[SessionMessage](0)
    shutting_down = False
    writer_done = anyio.Event()

    async def stdout_reader() -> None:
        assert process.stdout is not None
        reader = _Reader(limit, name)
        try:
            async with read_stream_writer:
                try:
                    while True:
                        try:
                            chunk = await process.stdout.receive(_READ_BYTES)
                        except anyio.EndOfStream:
                            return
                        for item in reader.feed(chunk):
                            try:
                                await read_stream_writer.send(item)
                            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                                return  # the session is gone; only the drain below remains
                finally:
                    await _drain_stdout(process)
        except anyio.ClosedResourceError:
            pass  # our own shutdown closed the stdout stream under the read
        except (anyio.BrokenResourceError, ConnectionError):
            if not shutting_down:
                logger.exception("MCP server %s: reading its stdout failed mid-session", name)

    async def stdin_writer() -> None:
        assert process.stdin is not None
        try:
            async with write_stream_reader:
                async for session_message in write_stream_reader:
                    json = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    data = (json + "\n").encode(server.encoding, server.encoding_error_handler)
                    await process.stdin.send(data)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server may still be alive: end the read stream so the session sees the connection
            # end instead of a request hanging forever.
            await read_stream_writer.aclose()
        finally:
            writer_done.set()

    async def shutdown() -> None:
        # Unblock the reader into its drain first: a server stuck writing stdout cannot read stdin.
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT):
            await writer_done.wait()
        await _stop_server_process(process)
        await _aclose_all(read_stream, write_stream, read_stream_writer, write_stream_reader)
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdout_reader)
        tg.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream
        finally:
            shutting_down = True
            with anyio.CancelScope(shield=True):  # every wait inside is bounded; the child must not leak
                await shutdown()
            tg.cancel_scope.cancel()
    await anyio.lowlevel.cancel_shielded_checkpoint()


class _Reader:
    """Bytes of the server's stdout in, session items out (see the module docstring)."""

    def __init__(self, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._lines = LineSplitter(limit)
        self._answered: Oversized | None = None  # the oversized line whose request already got its error

    def feed(self, chunk: bytes) -> list[SessionMessage | Exception]:
        items: list[SessionMessage | Exception] = []
        for event in self._lines.feed(chunk):
            if isinstance(event, Line):
                if event.data.strip():
                    items.append(self._parse(event.data))
            elif isinstance(event, Started):
                kind, request_id = event.big.identify(complete=False)
                if kind is Kind.RESPONSE and request_id is not None:
                    self._answered = event.big
                    items.append(too_large(request_id, self._limit))
            elif isinstance(event, Ended):
                item = self._ended(event.big)
                if item is not None:
                    items.append(item)
        return items

    def _ended(self, big: Oversized) -> SessionMessage | Exception | None:
        answered, self._answered = self._answered is big, None
        kind, request_id = big.identify(complete=True)
        what = f"a response to request {request_id!r}" if kind is Kind.RESPONSE else kind.value
        logger.warning(
            "MCP server %s sent a message of %d bytes (%s), over the limit of %d bytes: discarded",
            self._name,
            big.size,
            what,
            self._limit,
            extra={"mcp_server": self._name},
        )
        if answered:
            return None
        if kind is Kind.RESPONSE and request_id is not None:
            return too_large(request_id, self._limit)
        if kind is Kind.SERVER_MESSAGE:
            return None
        return MessageTooLarge(f"a message of {big.size} bytes, over the limit of {self._limit}, was dropped")

    def _parse(self, line: bytes) -> SessionMessage | Exception:
        try:
            return SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValueError as exc:  # pydantic's ValidationError: the SDK surfaces it in the read stream too
            logger.warning("MCP server %s sent a line that is not a JSON-RPC message: %s", self._name, exc)
            return exc
