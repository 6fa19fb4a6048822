"""What tracing costs a request when it is off: the tracing hooks one pass-through request calls, on
the no-op objects `smg.spans.NULL_TRACING` hands out, timed in-process.

The sequence is what the edge (`smg.api.middleware`), the route's recorder (`smg.routing.recorder`) and
the dispatcher (`smg.workers.dispatch`) call for one non-streaming request answered on the first attempt:
the server span (fetched and ended by the edge), the route span (start, activate, one attribute, the
recording test, end), and one attempt span (start, inject the headers, end). Its cost is compared with
an empty loop of the same length, and reported as nanoseconds per request.

``python -m bench.hooks`` prints the figure; `bench.run` puts it into the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from smg.api.middleware import _end_server_span
from smg.spans import NULL_TRACING

_UPSTREAM = {"Content-Type": "application/json", "X-Request-Id": "0" * 32}
_OUTCOME = {"status": 200, "error_code": None}


def _one_request() -> None:
    tracing = NULL_TRACING
    span = tracing.server_span()
    route = tracing.start_route("mock-model", streaming=False, policy="round_robin")
    with route.activate():
        route.set("smg.tool_loop", False)
        attempt = tracing.start_attempt("mock-model", "http://127.0.0.1:1", attempt=1)
        attempt.inject(_UPSTREAM)
        attempt.end(status=200, error=None)
    if route.recording:
        route.set("smg.worker", "http://127.0.0.1:1")
    route.end()
    _end_server_span(span, "POST", "/v1/chat/completions", _OUTCOME)


def _nothing() -> None:
    pass


def _best_ns(fn: Callable[[], None], n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def tracing_off_ns(n: int = 200_000, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` ns per request for the hooks, for an empty call, and their difference."""
    hooks, empty = _best_ns(_one_request, n, repeats), _best_ns(_nothing, n, repeats)
    return {"hooks_ns": hooks, "empty_call_ns": empty, "added_ns": hooks - empty}


if __name__ == "__main__":
    figures = tracing_off_ns()
    print(
        f"tracing off: {figures['added_ns']:.0f} ns of no-op hooks per request "
        f"({figures['hooks_ns']:.0f} ns with the call, {figures['empty_call_ns']:.0f} ns for an empty call)"
    )
