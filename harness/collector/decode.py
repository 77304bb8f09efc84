"""OTLP trace requests decoded into :class:`harness.spans.SpanRecord`."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from harness.collector.values import attributes_dict
from harness.spans import SpanRecord

UNKNOWN_SERVICE = "unknown_service"

_KIND_PREFIX = "SPAN_KIND_"
_STATUS_PREFIX = "STATUS_CODE_"


@dataclass(frozen=True)
class DecodedRequest:
    """The valid spans of one request, and why any others were rejected."""

    spans: list[SpanRecord]
    rejected: int = 0
    error: str = ""


def decode_request(request: ExportTraceServiceRequest) -> DecodedRequest:
    """Every span of ``request``; spans with invalid ids are counted as rejected."""
    spans: list[SpanRecord] = []
    rejected = 0
    error = ""
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problem = _invalid_ids(span)
                if problem:
                    rejected += 1
                    error = error or problem
                    continue
                spans.append(_record(span, service, resource, scope_spans.scope))
    return DecodedRequest(spans, rejected, error)


def _invalid_ids(span: Span) -> str:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"span {span.name!r}: trace_id must be 16 non-zero bytes"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span {span.name!r}: span_id must be 8 non-zero bytes"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: parent_span_id must be empty or 8 bytes"
    return ""


def _record(
    span: Span, service: str, resource: dict[str, object], scope: InstrumentationScope
) -> SpanRecord:
    return SpanRecord(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() if any(span.parent_span_id) else None,
        name=span.name,
        service=service,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        kind=_kind_name(span.kind),
        status=_status_name(span.status.code),
        status_message=span.status.message,
        attributes=attributes_dict(span.attributes),
        resource=dict(resource),
        events=tuple(
            {
                "name": event.name,
                "time_ns": event.time_unix_nano,
                "attributes": attributes_dict(event.attributes),
            }
            for event in span.events
        ),
        scope=scope.name,
        scope_version=scope.version,
    )


def _kind_name(kind: int) -> str:
    try:
        name = str(Span.SpanKind.Name(kind)).removeprefix(_KIND_PREFIX)
    except ValueError:
        return "INTERNAL"
    return "INTERNAL" if name == "UNSPECIFIED" else name


def _status_name(code: int) -> str:
    try:
        return str(Status.StatusCode.Name(code)).removeprefix(_STATUS_PREFIX)
    except ValueError:
        return "UNSET"
