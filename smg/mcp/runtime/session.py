"""One session of one MCP server, as the owner task opens it: the transport, the SDK client after its
``initialize`` handshake, and what the server told about the session's end."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
from mcp import Client
from mcp.client.session import MessageHandlerFnT

from smg.mcp.registry.config import ServerSpec
from smg.mcp.runtime.options import ConnectionOptions
from smg.mcp.runtime.stdio import StderrPipe
from smg.mcp.runtime.transports import open_transport

SESSION_GONE = "the server ended the MCP session (HTTP 404)"


class EndedByServer:
    """Whether the server has ended a session: it answered 404 to a request carrying the session's ID
    (streamable HTTP). Called by the transport with the request's HTTP method."""

    def __init__(self) -> None:
        self.seen = False
        self.on_stream = anyio.Event()  # the 404 answered the notification stream's GET

    def __call__(self, method: str) -> None:
        self.seen = True
        if method == "GET":
            self.on_stream.set()


@dataclass(frozen=True, eq=False)
class Session:
    """An established session: the entered client, the 404 watch of its transport, the stdio pipe."""

    client: Client
    ended: EndedByServer
    pipe: StderrPipe | None


class HandshakeTimeout(Exception):
    """The server did not answer ``initialize`` within the connect timeout."""

    def __init__(self, secs: float) -> None:
        super().__init__(f"timed out: no answer to initialize within {secs:g} s")


@asynccontextmanager
async def open_session(
    spec: ServerSpec,
    options: ConnectionOptions,
    *,
    message_handler: MessageHandlerFnT,
    on_pipe: Callable[[StderrPipe | None], None],
) -> AsyncIterator[Session]:
    """Open ``spec``'s transport and session and close both on exit; must be entered and exited in one
    task. ``on_pipe`` gets a stdio child's stderr pipe as soon as it exists (None for HTTP), so its last
    lines are at hand also when the handshake fails. Raises HandshakeTimeout, and whatever opening the
    transport or the session raises."""
    ended = EndedByServer()
    async with AsyncExitStack() as stack:
        transport, pipe = await open_transport(
            spec,
            os.environ if options.environ is None else options.environ,
            stack,
            headers_hook=options.headers_hook,
            max_message_bytes=options.max_message_bytes,
            on_session_gone=ended,
        )
        on_pipe(pipe)
        client = Client(transport, cache=None, message_handler=message_handler)
        with anyio.CancelScope(deadline=anyio.current_time() + options.connect_timeout) as deadline:
            async with client:
                deadline.deadline = math.inf
                if pipe is not None:
                    pipe.spawned()
                yield Session(client, ended, pipe)
    # Raised outside the exit stack, whose task groups would wrap it in an exception group.
    if deadline.cancelled_caught:
        raise HandshakeTimeout(options.connect_timeout)
