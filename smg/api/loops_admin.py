"""Admin API for the recent tool loops (admin key required, see auth): ``GET /loops/recent?limit=N``.

The answer is ``{"object": "list", "data": [...], "has_more": bool}``, newest first: the last loops the
gateway process ran (`smg.routing.recent_loops`), at most ``--recent-loops`` of them, held in memory only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request

from smg.api.strict_json import StrictJsonRoute

if TYPE_CHECKING:
    from smg.routing.recent_loops import RecentLoops

router = APIRouter(prefix="/loops", tags=["admin"], route_class=StrictJsonRoute)
_MAX_LIMIT = 1000


class LoopsContext(Protocol):
    """What the loops admin route needs from the application context (None: no ring)."""

    @property
    def recent_loops(self) -> RecentLoops | None: ...


@router.get("/recent")
async def recent_loops(
    request: Request, limit: Annotated[int, Query(ge=1, le=_MAX_LIMIT)] = 20
) -> dict[str, Any]:
    """The last ``limit`` finished tool loops, newest first; ``has_more`` when the ring holds more."""
    ctx: LoopsContext = request.app.state.context
    ring = ctx.recent_loops
    data = ring.newest(limit + 1) if ring is not None else []
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit}
