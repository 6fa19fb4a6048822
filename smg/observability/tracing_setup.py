"""Turning tracing on (``--enable-trace``): the OTLP provider, and the server span of every request.

The server span is made by opentelemetry-instrumentation-fastapi: `instrument_app` wraps the whole ASGI
application in its middleware, outside the edge (`smg.api.middleware`) and the framework's error layer,
so every route gets one, ``POST /v1/chat/completions`` included (the edge serves it itself, past the
routing). The span joins the client's W3C ``traceparent``, carries the standard HTTP semantic-convention
attributes (the stable ones: ``http.request.method``, ``url.scheme``, ``server.address``,
``client.address``, ``user_agent.original``, ``http.response.status_code`` ...), and is current while
the request runs, so the route, attempt and tool spans are its children. The edge then names it
``METHOD route`` and sets ``http.route`` and ``url.path`` to the route's template (a raw path may carry
ids), and ``error.type`` to the gateway's error code on a 5xx.

Health and metrics endpoints (`EXCLUDED_URLS`) get no span. The receive and send events of the ASGI
protocol get none either (one per stream chunk would outnumber the request's own spans). With tracing off
nothing is installed: no middleware, no per-request cost.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from smg.observability.tracing import Tracing
from smg.settings import TraceSettings
from smg.spans import Tracer

OwnedTracerProvider = TracerProvider  # what `configure_tracing` builds, named so callers need no otel import
EXCLUDED_URLS = r"^[a-z]+://[^/]*/(health|liveness|readiness|metrics)$"
"""Requests never traced: the probes and the metrics endpoint (matched against ``scheme://host/path``)."""
SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


def configure_tracing(settings: TraceSettings) -> TracerProvider | None:
    """A provider exporting batches over OTLP/gRPC (plain text) to ``settings.otlp_endpoint``; None when
    tracing is off. The caller shuts it down (which flushes what is left)."""
    if not settings.enabled:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "smg"}))
    exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument_app(app: FastAPI, tracing: Tracer) -> bool:
    """Install the server-span instrumentation on ``app`` when ``tracing`` is on (True); nothing otherwise.
    Call before the app serves its first request (the middleware stack is built then).

    The instrumentation reads the semantic-convention choice from ``OTEL_SEMCONV_STABILITY_OPT_IN``
    once per process; unless the operator set it, it is set to ``http`` (the stable HTTP conventions,
    whose ``url.path`` the edge replaces by the template, rather than the old ones, whose ``http.target``
    and ``http.url`` would keep the raw path)."""
    if not isinstance(tracing, Tracing):
        return False
    os.environ.setdefault(SEMCONV_OPT_IN, "http")
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider,
        meter_provider=NoOpMeterProvider(),  # the gateway's HTTP metrics are its own (Prometheus)
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )
    return True
