"""An OTLP/gRPC trace receiver that accepts every export and only counts spans (the `smg-trace` target
sends its spans here, so the measured cost includes building, batching and sending them)."""

from __future__ import annotations

import os
import threading
from concurrent import futures
from typing import Any

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # the bench forks wrk while the sink runs
import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import (  # noqa: TID251  # a receiver, not tracing
    trace_service_pb2,
    trace_service_pb2_grpc,
)

__all__ = ["OtlpSink"]


class _Counter(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self.exports = 0
        self._lock = threading.Lock()

    def Export(  # the gRPC method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._lock:
            self.spans += n
            self.exports += 1
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpSink:
    """A gRPC server on 127.0.0.1 (a free port) on its own threads; use as a context manager."""

    def __init__(self) -> None:
        self._counter = _Counter()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self._counter, self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def spans(self) -> int:
        return self._counter.spans

    def __enter__(self) -> OtlpSink:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)
