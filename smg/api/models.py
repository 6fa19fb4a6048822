"""GET /v1/models and /v1/models/{model}: models served by healthy workers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from smg.api.deps import context_of
from smg.errors import ModelNotFound

router = APIRouter()


def _card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "smg"}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [_card(m) for m in context_of(request).registry.models()]}


@router.get("/v1/models/{model:path}")
async def get_model(model: str, request: Request) -> dict[str, Any]:
    if model not in context_of(request).registry.models():
        raise ModelNotFound(model)
    return _card(model)
