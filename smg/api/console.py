"""The operator console over HTTP: its files under ``/ui``, its login (``/ui/session``) and the overview's
data (``GET /stats/recent``, admin plane).

- ``GET /ui`` redirects to ``/ui/``, which is ``index.html``; ``GET /ui/{path}`` is a file of
  `smg.console.STATIC_DIR` of a kind `smg.console.CONTENT_TYPES` names (anything else, a dot-file, an
  empty, ``.`` or ``..`` segment, or a path leaving the directory: 404). Files carry ``Cache-Control:
  no-cache``, the page and the session ``no-store``.
- ``GET /ui/session`` says whether a key is required and whether this browser is logged in;
  ``POST /ui/session`` ``{"key": ...}`` logs in with an admin key: the answer sets an ``HttpOnly``,
  ``SameSite=Strict`` cookie holding a signed token (`smg.console.session`), never the key;
  ``DELETE /ui/session`` clears it.
- `ConsoleHeaders` gives every ``/ui`` response the console's security headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smg.api.strict_json import StrictJsonRoute
from smg.console import CONTENT_TYPES, STATIC_DIR, is_console_path, secured
from smg.console.session import COOKIE, clear_cookie, cookie_value, set_cookie
from smg.console.stats import INTERVAL_SECS
from smg.errors import UnknownUrl

if TYPE_CHECKING:
    from smg.api.auth import KeyAuth
    from smg.console.stats import RecentStats

router = APIRouter(tags=["console"], route_class=StrictJsonRoute)
_MAX_MINUTES = 60


class ConsoleContext(Protocol):
    """What the console routes need from the application context (no sampler: no points)."""

    @property
    def auth(self) -> KeyAuth: ...
    @property
    def recent_stats(self) -> RecentStats | None: ...


def _context(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.context
    return ctx


class ConsoleHeaders:
    """ASGI middleware: `smg.console.secured` headers on every response under ``/ui``; other requests
    pass untouched (it sits inside the edge, so the pass-through routes never reach it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secured(list(message.get("headers", ())))}
            await send(message)

        await self.app(scope, receive, send_secured)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=4096)


@router.get("/ui", include_in_schema=False)
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/session")
async def session(request: Request) -> dict[str, bool]:
    """``authenticated``: the request carries a valid console cookie, or no key is required."""
    auth = _context(request).auth
    if not auth.admin_required:
        return {"authenticated": True, "key_required": False}
    token = cookie_value(request.headers.get("cookie", "").encode("latin-1"), COOKIE)
    return {"authenticated": token is not None and auth.console.verify(token), "key_required": True}


@router.post("/ui/session", status_code=204, response_class=Response)
async def login(body: Login, request: Request) -> Response:
    """Log in with an admin key: 204 and the session cookie. A wrong key is 401 ``invalid_api_key``, a
    data-plane key 403 ``forbidden``. Without an admin key configured there is nothing to log in to:
    204 without a cookie."""
    auth = _context(request).auth
    if not auth.admin_required:
        return Response(status_code=204)
    token = auth.login(body.key.encode())
    cookie = set_cookie(token, secure=request.url.scheme == "https")
    return Response(status_code=204, headers={"set-cookie": cookie})


@router.delete("/ui/session", status_code=204, response_class=Response)
async def logout(request: Request) -> Response:
    """Log out: 204 and the cookie cleared."""
    return Response(
        status_code=204, headers={"set-cookie": clear_cookie(secure=request.url.scheme == "https")}
    )


@router.get("/ui/", include_in_schema=False)
async def index() -> Response:
    return await _serve("index.html")


@router.get("/ui/{path:path}", include_in_schema=False)
async def static_file(path: str) -> Response:
    return await _serve(path)


def _static_path(relative: str) -> Path | None:
    """The file of the console's directory that ``relative`` names, or None."""
    parts = relative.split("/")
    if any(not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None  # also every "." and ".." segment
    root = STATIC_DIR
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root) or candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate if candidate.is_file() else None


async def _serve(relative: str) -> Response:
    found = _static_path(relative)
    if found is None:
        raise UnknownUrl(f"unknown URL: /ui/{relative}")
    content = await anyio.Path(found).read_bytes()
    headers = {
        "content-type": CONTENT_TYPES[found.suffix],
        "cache-control": "no-store" if found.suffix == ".html" else "no-cache",
    }
    return Response(content, headers=headers)


@router.get("/stats/recent", tags=["admin"])
async def recent_stats(
    request: Request, minutes: Annotated[int, Query(ge=1, le=_MAX_MINUTES)] = 15
) -> dict[str, Any]:
    """What the gateway routed over each sampling interval of the last ``minutes``, oldest first."""
    ring = _context(request).recent_stats
    interval = ring.interval_secs if ring is not None else INTERVAL_SECS
    return {
        "interval_secs": int(interval) if float(interval).is_integer() else interval,
        "points": ring.recent(minutes) if ring is not None else [],
    }
