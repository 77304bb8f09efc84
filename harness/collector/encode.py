""":class:`harness.spans.SpanRecord` encoded back into an OTLP trace request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from harness.collector.values import key_values
from harness.spans import SpanRecord


def encode_request(spans: Iterable[SpanRecord]) -> ExportTraceServiceRequest:
    """One ``ResourceSpans`` per distinct resource (which carries ``service.name``), one
    ``ScopeSpans`` per instrumentation scope in it."""
    groups: dict[str, tuple[dict[str, Any], dict[tuple[str, str], list[SpanRecord]]]] = {}
    for span in spans:
        resource = {"service.name": span.service, **span.resource}
        key = json.dumps(resource, sort_keys=True, default=repr)
        scopes = groups.setdefault(key, (resource, {}))[1]
        scopes.setdefault((span.scope, span.scope_version), []).append(span)
    request = ExportTraceServiceRequest()
    for resource, scopes in groups.values():
        request.resource_spans.append(
            ResourceSpans(
                resource=Resource(attributes=key_values(resource)),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name=name, version=version),
                        spans=[encode_span(span) for span in members],
                    )
                    for (name, version), members in scopes.items()
                ],
            )
        )
    return request


def encode_span(span: SpanRecord) -> Span:
    """One OTLP ``Span`` (kind and status from their upper-case names)."""
    return Span(
        trace_id=bytes.fromhex(span.trace_id),
        span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id) if span.parent_span_id else b"",
        name=span.name,
        kind=Span.SpanKind.Value(f"SPAN_KIND_{span.kind}"),
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        attributes=key_values(span.attributes),
        events=[
            Span.Event(
                name=str(event.get("name", "")),
                time_unix_nano=int(event.get("time_ns", 0)),
                attributes=key_values(event.get("attributes", {})),
            )
            for event in span.events
        ],
        status=Status(
            code=Status.StatusCode.Value(f"STATUS_CODE_{span.status}"),
            message=span.status_message,
        ),
    )
