"""A FastAPI route class whose JSON request bodies follow the chat route's rule: an object that names a
key twice, at any depth, is refused with 400 ``duplicate_json_key`` (FastAPI alone keeps the last)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from smg.protocol import refuse_duplicate_keys


class StrictJsonRoute(APIRoute):
    """`APIRoute` that checks a route's request body for duplicate keys before FastAPI parses it.
    Routes without a body are left as they are."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict(request: Request) -> Response:
            raw = await request.body()  # kept on the request: FastAPI reads it from there
            if raw:
                refuse_duplicate_keys(raw)
            return await handler(request)

        return strict
