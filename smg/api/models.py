"""GET /v1/models and /v1/models/{model}: models served by healthy workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, Request

from smg.errors import ModelNotFound
from smg.keys.rules import require_model
from smg.keys.scope import scope_of

if TYPE_CHECKING:
    from smg.workers.worker import WorkerRegistry

router = APIRouter()


class ModelsContext(Protocol):
    """What the model routes need from the application context."""

    @property
    def registry(self) -> WorkerRegistry: ...


def _context(request: Request) -> ModelsContext:
    ctx: ModelsContext = request.app.state.context
    return ctx


def _card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "smg"}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The models served, those the caller's key may use."""
    scope = scope_of(request.scope)
    served = _context(request).registry.models()
    return {"object": "list", "data": [_card(m) for m in served if scope.allows_model(m)]}


@router.get("/v1/models/{model:path}")
async def get_model(model: str, request: Request) -> dict[str, Any]:
    require_model(scope_of(request.scope), model)
    if model not in _context(request).registry.models():
        raise ModelNotFound(model)
    return _card(model)
