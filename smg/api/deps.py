"""Access to the application context from a route."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from smg.context import AppContext


def context_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.context
    return ctx
