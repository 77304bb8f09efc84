"""Spans in the JSON format of Jaeger's query API (``/api/traces``), which its UI uploads."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from harness.spans import SpanRecord

#: OTLP span kinds as Jaeger's ``span.kind`` tag (INTERNAL carries no tag, as in Jaeger).
_KIND_TAGS = {
    "SERVER": "server",
    "CLIENT": "client",
    "PRODUCER": "producer",
    "CONSUMER": "consumer",
}


def to_jaeger(spans: Iterable[SpanRecord]) -> dict[str, Any]:
    """``{"data": [trace, ...]}``: one entry per trace, spans by start time."""
    traces: dict[str, list[SpanRecord]] = {}
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        traces.setdefault(span.trace_id, []).append(span)
    data = [_trace(trace_id, members) for trace_id, members in traces.items()]
    return {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}


def tag(key: str, value: Any) -> dict[str, Any]:
    """A Jaeger tag; lists and maps become JSON strings, bytes base64 ``binary``."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, bytes | bytearray):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode()}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    return {"key": key, "type": "string", "value": json.dumps(value, default=repr)}


def _trace(trace_id: str, spans: list[SpanRecord]) -> dict[str, Any]:
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    out = []
    for span in spans:
        key = json.dumps([span.service, span.resource], sort_keys=True, default=repr)
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = {
                "serviceName": span.service,
                "tags": [tag(k, v) for k, v in span.resource.items() if k != "service.name"],
            }
        out.append(_span(span, process_ids[key]))
    return {"traceID": trace_id, "spans": out, "processes": processes, "warnings": None}


def _span(span: SpanRecord, process_id: str) -> dict[str, Any]:
    references = []
    if span.parent_span_id:
        references.append(
            {"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id}
        )
    return {
        "traceID": span.trace_id,
        "spanID": span.span_id,
        "operationName": span.name,
        "references": references,
        "startTime": span.start_ns // 1000,
        "duration": max(0, span.end_ns - span.start_ns) // 1000,
        "tags": [tag(k, v) for k, v in span.attributes.items()] + _status_tags(span),
        "logs": [
            {
                "timestamp": int(event.get("time_ns", 0)) // 1000,
                "fields": [tag("event", str(event.get("name", "")))]
                + [tag(k, v) for k, v in dict(event.get("attributes", {})).items()],
            }
            for event in span.events
        ],
        "processID": process_id,
        "warnings": None,
        "flags": 1,
    }


def _status_tags(span: SpanRecord) -> list[dict[str, Any]]:
    tags = []
    if span.kind in _KIND_TAGS:
        tags.append(tag("span.kind", _KIND_TAGS[span.kind]))
    if span.status != "UNSET":
        tags.append(tag("otel.status_code", span.status))
    if span.status == "ERROR":
        tags.append(tag("error", True))
    if span.status_message:
        tags.append(tag("otel.status_description", span.status_message))
    return tags
