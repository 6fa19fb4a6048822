"""What the api layer needs from the application context.

The edge and each route module declare, as a small Protocol next to their code, what they read from
``app.state.context``; nothing in `smg.api` imports the composition root (`smg.context`), which sits
above it (ADR 0010). `ApiContext` is all of those Protocols together, and `attach` is the one way a
context is put on an app, so the type checker proves at that call that the context provides everything
the api layer reads.
"""

from __future__ import annotations

from typing import Protocol

from starlette.applications import Starlette

from smg.api.admin import WorkersContext
from smg.api.chat import ChatContext
from smg.api.console import ConsoleContext
from smg.api.health import ReadinessContext
from smg.api.keys_admin import KeysContext
from smg.api.loops_admin import LoopsContext
from smg.api.mcp_admin import McpContext
from smg.api.middleware import Edge
from smg.api.models import ModelsContext
from smg.api.passthrough import PassThroughContext
from smg.api.responses import ResponsesContext


class ApiContext(
    Edge,
    ChatContext,
    PassThroughContext,
    WorkersContext,
    ModelsContext,
    ReadinessContext,
    McpContext,
    KeysContext,
    LoopsContext,
    ResponsesContext,
    ConsoleContext,
    Protocol,
):
    """Everything the edge and the routes read from the application context."""


def attach(app: Starlette, context: ApiContext) -> None:
    """Serve ``context`` to the edge and the routes of ``app`` (they read ``app.state.context``)."""
    app.state.context = context
