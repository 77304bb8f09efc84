"""The harness's own spans (faults), exported to the run's collector over OTLP.

A private tracer provider (not the global one), so the pipeline code that runs
inside the test process is not affected.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer

HARNESS_SERVICE = "notepipe-harness"


class HarnessTracing:
    def __init__(self, collector_endpoint: str) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": HARNESS_SERVICE}))
        exporter = OTLPSpanExporter(endpoint=f"{collector_endpoint.rstrip('/')}/v1/traces")
        self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer: Tracer = self.provider.get_tracer("notepipe.harness")

    def shutdown(self) -> None:
        self.provider.shutdown()
