"""``smg launch``: run the gateway and its metrics listener until SIGINT/SIGTERM.

Serving, and what a shutdown does, is `smg.serving.server.serve`; with ``--processes`` above 1 this
process is the supervisor of that many serving processes (`smg.serving.supervisor`), and each of them
runs this same command (`smg.serving.child`). The process exits with status 0 after a shutdown, 1 when
a port cannot be bound, 2 for a start-up configuration the gateway refuses.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

import uvloop

from smg.errors import SmgError
from smg.serving.child import inherited
from smg.serving.server import serve
from smg.serving.supervisor import StartFailed, supervise
from smg.settings import Settings

READY_PREFIX = "smg listening on"


def _print_ready(url: str, metrics_url: str) -> None:
    print(f"{READY_PREFIX} {url} (metrics {metrics_url})", flush=True)


def run(settings: Settings, argv: Sequence[str] | None = None) -> int:
    """Blocking entry point used by the CLI; returns the process exit code. ``argv``: the command's
    arguments (default ``sys.argv[1:]``), which serving processes under a supervisor are started with."""
    # Fewer young-generation collections: a request allocates thousands of short-lived objects, most
    # freed by reference counting. Process-wide, so set here rather than in the app (docs/benchmarks.md).
    gc.set_threshold(50_000, 20, 100)
    child = inherited()
    try:
        if child is not None:
            uvloop.run(serve(settings, on_ready=child.ready, sock=child.sock, metrics=False))
        elif settings.server.process_count > 1:
            args = sys.argv[1:] if argv is None else argv
            uvloop.run(supervise(settings, args, on_ready=_print_ready))
        else:
            uvloop.run(serve(settings, on_ready=_print_ready))
    except OSError as exc:
        print(f"smg: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except SmgError as exc:  # start-up configuration, e.g. an invalid --mcp-config-path file
        print(f"smg: error: {exc.message}", file=sys.stderr)
        return 2
    except StartFailed as exc:  # the serving process printed its error
        return exc.code
    return 0
