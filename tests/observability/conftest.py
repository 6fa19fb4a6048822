"""Span capture for the tracing tests: an in-memory exporter behind a tracer provider, and a bounded wait
for finished spans (the server span ends after the response has been sent)."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


async def finished_spans(
    exporter: InMemorySpanExporter, count: int, kind: SpanKind | None = None
) -> list[ReadableSpan]:
    """The finished spans (of ``kind``, when given) once there are at least ``count``; within 5 s."""
    async with asyncio.timeout(5):
        while True:
            found = [s for s in exporter.get_finished_spans() if kind is None or s.kind == kind]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.01)
