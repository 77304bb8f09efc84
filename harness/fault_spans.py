"""The harness's own spans (faults), exported to the run's collector over OTLP.

A private tracer provider (not the global one), so the pipeline code that runs
inside the test process is not affected.
"""

from __future__ import annotations

from opentelemetry.context import Context
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

    @staticmethod
    def note_context(database_dsn: str, note_id: int) -> Context | None:
        """The context of note ``note_id``'s trace (the ``traceparent`` the API stored in
        the ledger), to put a harness span into that trace; ``None`` if unreadable."""
        import psycopg

        from notepipe.telemetry import context_from

        try:
            with psycopg.connect(database_dsn, connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT trace_context FROM notes WHERE id = %s", (note_id,)
                ).fetchone()
        except psycopg.Error:
            return None
        return context_from(row[0]) if row and row[0] else None

    def shutdown(self) -> None:
        self.provider.shutdown()

    def __enter__(self) -> HarnessTracing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
