"""OpenTelemetry setup from the standard ``OTEL_*`` variables, and trace-context helpers.

Spans are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or ``OTEL_TRACES_EXPORTER=otlp``;
``OTEL_SDK_DISABLED=true`` turns tracing off. Root spans that are not ours (an
idle worker's Redis polling, say) are dropped, so one note is one trace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)

#: Root spans whose names start with one of these are kept; other roots are dropped.
ROOT_SPAN_PREFIXES = ("note.", "reconcile", "GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "fault.")

_provider: TracerProvider | None = None


class OwnRootsSampler(Sampler):
    """Sample root spans only when they are one of ours (see ``ROOT_SPAN_PREFIXES``)."""

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        keep = name.startswith(ROOT_SPAN_PREFIXES)
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "OwnRootsSampler"


def _exporter_wanted() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter == "otlp"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_telemetry(service_name: str, *, instrument_clients: bool = True) -> bool:
    """Install the global tracer provider once per process; return True if exporting.

    ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` override ``service_name``.
    """
    global _provider  # noqa: PLW0603 - one provider per process, by OpenTelemetry's design
    if _provider is not None:
        return True
    if not _exporter_wanted():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(OwnRootsSampler())
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    if instrument_clients:
        _instrument_clients()
    log.info("OpenTelemetry exporting spans over OTLP as %s", service_name)
    return True


def _instrument_clients() -> None:
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)


def flush_telemetry(timeout_ms: int = 5_000) -> None:
    """Export buffered spans now (a work-horse calls this before it exits)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def shutdown_telemetry() -> None:
    global _provider  # noqa: PLW0603
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def current_trace_context() -> dict[str, str]:
    """The W3C ``traceparent``/``tracestate`` of the current span, for ``job.meta``."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, Any]) -> context.Context:
    """A context to parent spans on, from a carrier holding ``traceparent``."""
    return propagate.extract(
        {k: str(v) for k, v in carrier.items() if k in ("traceparent", "tracestate")}
    )
