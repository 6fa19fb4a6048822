"""Admin API for workers: GET/POST /workers, GET/DELETE /workers/{id}. Admin key required (see auth)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from smg.api.strict_json import StrictJsonRoute

if TYPE_CHECKING:
    from smg.workers.pool import WorkerPool
    from smg.workers.worker import WorkerRegistry

router = APIRouter(prefix="/workers", tags=["admin"], route_class=StrictJsonRoute)


class WorkersContext(Protocol):
    """What the worker admin routes need from the application context."""

    @property
    def registry(self) -> WorkerRegistry: ...
    @property
    def pool(self) -> WorkerPool: ...


def _context(request: Request) -> WorkersContext:
    ctx: WorkersContext = request.app.state.context
    return ctx


class AddWorker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    api_key: str | None = Field(default=None, max_length=4096)


@router.get("")
async def list_workers(request: Request) -> dict[str, Any]:
    return {"workers": [w.describe() for w in _context(request).registry]}


@router.post("", status_code=201)
async def add_worker(body: AddWorker, request: Request) -> JSONResponse:
    worker = await _context(request).pool.add(body.url, api_key=body.api_key, source="admin")
    return JSONResponse(worker.describe(), status_code=201)


@router.get("/{key:path}")
async def get_worker(key: str, request: Request) -> dict[str, Any]:
    return _context(request).registry.get(key).describe()


@router.delete("/{key:path}")
async def remove_worker(key: str, request: Request) -> dict[str, Any]:
    worker = await _context(request).pool.remove(key)
    return {"removed": worker.describe()}
