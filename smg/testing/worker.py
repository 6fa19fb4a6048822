"""A scripted OpenAI-compatible worker for tests, the demo and benchmarks (aiohttp, no per-request logs).

Run ``python -m smg.testing.worker --host 127.0.0.1 --port 0 [--model NAME]... [fault flags]``: once
listening it prints exactly one line ``SMG_WORKER_READY http://HOST:PORT`` and stops with exit code 0 on
SIGTERM/SIGINT. In-process, use `running_worker` (binds port 0) or mount `build_worker_app`.

Endpoints: ``GET /v1/models``; ``GET /health`` (200 ``{"status":"ok"}`` or the ``health_status`` fault);
``POST /v1/chat/completions`` (stream and non-stream; replies are described in `worker_script` and the
stream layout in `worker_render`; unknown model -> 404 ``model_not_found``, bad JSON/body -> 400);
``POST /v1/completions`` and ``POST /v1/embeddings`` (`worker_text`). Faults apply to all three.
Control plane: ``GET/POST /_smg/faults`` (POST sets the given fields, ``{"reset": true}`` resets all),
``GET /_smg/stats``, ``GET/DELETE /_smg/requests`` (last 50 model requests as
``{"headers": {lowercased: value}, "body": <parsed JSON or null>}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiohttp import web

from smg.testing.worker_app import WorkerConfig, build_worker_app, live_state
from smg.testing.worker_faults import Faults, WorkerStats

__all__ = [
    "Faults",
    "RunningWorker",
    "WorkerConfig",
    "WorkerStats",
    "build_worker_app",
    "main",
    "running_worker",
]

READY_PREFIX = "SMG_WORKER_READY"
_SHUTDOWN_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class RunningWorker:
    """A worker listening on 127.0.0.1; `faults` and `stats` are the live objects it uses."""

    url: str
    faults: Faults
    stats: WorkerStats


@contextlib.asynccontextmanager
async def _serve(app: web.Application, *, host: str, port: int) -> AsyncIterator[str]:
    # handler_cancellation: a hanging or slow handler stops when its client goes away.
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        yield f"http://{url_host}:{bound_port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_worker(
    config: WorkerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningWorker]:
    """Serve a worker on `host` and `port` (0: a free one) for the duration of the block.

    Raises:
        OSError: the socket cannot be bound.
    """
    app = build_worker_app(config or WorkerConfig())
    faults, stats = live_state(app)
    async with _serve(app, host=host, port=port) as url:
        yield RunningWorker(url=url, faults=faults, stats=stats)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m smg.testing.worker", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 binds a free port")
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="model to serve (repeatable; default mock-model)",
    )
    parser.add_argument(
        "--fail-status",
        type=int,
        default=None,
        help="alone: every chat request fails with this status; "
        "with --fail-every: the status of the periodic failures (default 503)",
    )
    parser.add_argument("--fail-every", type=int, default=0, help="fail every Nth chat request")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--chunk-delay-ms", type=int, default=0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--drop-after-chunks", type=int, default=None)
    parser.add_argument("--health-status", type=int, default=200)
    return parser.parse_args(argv)


async def _run(config: WorkerConfig, *, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with _serve(build_worker_app(config), host=host, port=port) as url:
        print(f"{READY_PREFIX} {url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker until SIGTERM/SIGINT and return the exit code: 0, or 2 for invalid flag values.

    `--fail-status S` alone sets the `status` fault (every chat request fails with S); together with
    `--fail-every N` it sets `fail_status` (requests N, 2N, ... fail with S).

    Raises:
        SystemExit: from argparse, for unknown flags or `--help`.
        OSError: the address cannot be bound.
    """
    args = _parse_args(argv)
    faults = Faults()
    changes = {
        name: getattr(args, name)
        for name in ("fail_every", "delay_ms", "chunk_delay_ms", "hang", "drop_after_chunks", "health_status")
    }
    if args.fail_status is not None:
        changes["fail_status" if args.fail_every else "status"] = args.fail_status
    try:
        faults.update(changes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = WorkerConfig(models=tuple(args.models or ("mock-model",)), faults=faults)
    asyncio.run(_run(config, host=args.host, port=args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
