"""Probes: /health and /liveness (the process answers), /readiness (a worker is routable)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from smg.workers.worker import WorkerRegistry

router = APIRouter()


class ReadinessContext(Protocol):
    """What the readiness probe needs from the application context."""

    @property
    def registry(self) -> WorkerRegistry: ...


def _context(request: Request) -> ReadinessContext:
    ctx: ReadinessContext = request.app.state.context
    return ctx


@router.get("/health")
@router.get("/liveness")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readiness")
async def readiness(request: Request) -> JSONResponse:
    registry = _context(request).registry
    routable = registry.routable_count()
    body: dict[str, object] = {
        "status": "ready" if routable else "not_ready",
        "workers": len(registry),
        "routable_workers": routable,
    }
    if not routable:
        body["reason"] = (
            "no worker is registered" if not len(registry) else "no worker is healthy and routable"
        )
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
