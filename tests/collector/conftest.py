"""Trace collector fixtures: a running collector and a real OTel SDK exporting to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from harness.collector import TraceCollector


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[TraceCollector]:
    c = TraceCollector(tmp_path / "spans.jsonl")
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def tracer_provider(collector: TraceCollector) -> Iterator[TracerProvider]:
    """Not the global provider: the real OTLP/HTTP (protobuf) exporter, synchronous per span."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "notepipe-test", "deployment.environment": "ci"})
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.traces_url, timeout=5))
    )
    try:
        yield provider
    finally:
        provider.shutdown()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client
