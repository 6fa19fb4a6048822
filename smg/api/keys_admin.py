"""Admin API for stored API keys (admin key required, see auth):

GET /keys, POST /keys (201: ``{"key": view, "secret": "smg-..."}``, the only answer that holds the
secret), GET /keys/{name}, DELETE /keys/{name} and POST /keys/{name}/revoke (both revoke: the row is
kept, its name stays taken). A view never holds the secret or its digest (`smg.keys.record`).
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from smg.api.auth import KeyAuth
from smg.api.strict_json import StrictJsonRoute
from smg.errors import ServiceUnavailable
from smg.keys.service import Keys

router = APIRouter(prefix="/keys", tags=["admin", "keys"], route_class=StrictJsonRoute)


class KeysContext(Protocol):
    """What the key admin routes need from the application context: the stored keys live with the
    edge's key check (`KeyAuth.keys`)."""

    @property
    def auth(self) -> KeyAuth: ...


def _keys(request: Request) -> Keys:
    ctx: KeysContext = request.app.state.context
    keys = ctx.auth.keys
    if keys is None:
        raise ServiceUnavailable("this gateway has no key store")
    return keys


@router.get("")
async def list_keys(request: Request) -> dict[str, Any]:
    return {"keys": await _keys(request).list()}


@router.post("", status_code=201)
async def create_key(body: dict[str, Any], request: Request) -> JSONResponse:
    """Body: ``name``; optional ``servers``, ``tools`` (``SERVER__TOOL``), ``models``, ``rpm``,
    ``expires_in`` (seconds, or ``90m``, ``12h``, ``30d``...)."""
    return JSONResponse(await _keys(request).create(body), status_code=201)


@router.get("/{name}")
async def get_key(name: str, request: Request) -> dict[str, Any]:
    return await _keys(request).get(name)


@router.delete("/{name}")
async def delete_key(name: str, request: Request) -> dict[str, Any]:
    return await _keys(request).revoke(name)


@router.post("/{name}/revoke")
async def revoke_key(name: str, request: Request) -> dict[str, Any]:
    return await _keys(request).revoke(name)
