"""Helpers for the tests of an in-process gateway: error-shape checks, bounded polling, metric samples."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any

import httpx

from smg.observability.metrics import Metrics

ERROR_KEYS = {"message", "type", "param", "code"}

# The calc example server over stdio, as the admin API registers it (`POST /mcp/servers`).
CALC = {
    "name": "calc",
    "transport": "stdio",
    "command": sys.executable,
    "args": ["-m", "mcp_servers.calc", "--transport", "stdio"],
}


def assert_error(resp: httpx.Response, status: int, code: str, *, param: str | None = None) -> dict[str, Any]:
    """The response is a gateway error: ``status``, JSON ``{"error": {...}}`` with exactly the OpenAI
    keys, ``code`` both in the body and in ``X-SMG-Error-Code``. Returns the inner error object."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == code
    assert resp.headers["x-smg-error-code"] == code
    if param is not None:
        assert error["param"] == param
    return dict(error)


POLL_LIMIT_SECS = 5.0


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds, polling the event loop; TimeoutError after `POLL_LIMIT_SECS`."""
    async with asyncio.timeout(POLL_LIMIT_SECS):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def closed_port_url() -> str:
    """A loopback URL nobody listens on: bind port 0, note the port, close the socket."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class RecordingSleep:
    """The dispatcher's ``sleep`` seam: records each backoff and returns at once (or waits on ``gate``)."""

    def __init__(self, *, gated: bool = False) -> None:
        self.delays: list[float] = []
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await self.gate.wait()


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs
