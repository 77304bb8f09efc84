"""Spans in the JSON format of Jaeger's query API (``/api/traces``), which its UI uploads.

Written as Jaeger v2 itself answers for the same OTLP spans (checked against the
real Jaeger by ``tests/jaeger``): tags sorted by key; ``span.kind`` on every span,
``internal`` included; ``otel.scope.name``/``otel.scope.version`` tags; integers
beyond ±2^53 as strings; arrays and maps as compact JSON strings; no ``flags``; the
span warnings of Jaeger's clock-skew adjuster (:mod:`harness.collector.jaeger_warnings`).
Differences that remain are listed in ``harness/jaeger/compare.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from harness.collector.jaeger_warnings import span_warnings
from harness.spans import SpanRecord

#: OTLP span kinds as Jaeger's ``span.kind`` tag.
_KIND_TAGS = {
    "SERVER": "server",
    "CLIENT": "client",
    "PRODUCER": "producer",
    "CONSUMER": "consumer",
    "INTERNAL": "internal",
}
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
#: Jaeger writes integers a JavaScript number cannot hold exactly as strings.
_JS_SAFE = 2**53


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
        exact = -_JS_SAFE < value < _JS_SAFE
        return {"key": key, "type": "int64", "value": value if exact else str(value)}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, bytes | bytearray):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode()}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    return {"key": key, "type": "string", "value": go_json(value)}


def go_json(value: Any) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (``<``, ``>``, ``&``, U+2028 and
    U+2029 escaped), which is how Jaeger turns array and map attributes into strings."""
    text = json.dumps(value, default=repr, separators=(",", ":"), ensure_ascii=False)
    return text.translate(_GO_ESCAPES)


def _tags(values: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((tag(k, v) for k, v in values.items()), key=lambda t: str(t["key"]))


def _log(event: dict[str, Any]) -> dict[str, Any]:
    """A span event as a Jaeger log: the ``event`` field (its name) first, then the
    attributes sorted by key (Jaeger's ``SortTagsAndLogFields`` adjuster)."""
    attributes = {k: v for k, v in dict(event.get("attributes", {})).items() if k != "event"}
    return {
        "timestamp": int(event.get("time_ns", 0)) // 1000,
        "fields": [tag("event", str(event.get("name", ""))), *_tags(attributes)],
    }


def _trace(trace_id: str, spans: list[SpanRecord]) -> dict[str, Any]:
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    out = []
    warnings = span_warnings(spans, _host_key)
    for span in spans:
        key = json.dumps([span.service, span.resource], sort_keys=True, default=repr)
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = {
                "serviceName": span.service,
                "tags": _tags({k: v for k, v in span.resource.items() if k != "service.name"}),
            }
        out.append(_span(span, process_ids[key], warnings.get(span.span_id)))
    return {"traceID": trace_id, "spans": out, "processes": processes, "warnings": None}


def _host_key(span: SpanRecord) -> str:
    """What Jaeger's clock-skew adjuster takes for the host: the process's ``ip`` tag."""
    ip = span.resource.get("ip")
    return ip if isinstance(ip, str) else ""


def _span(span: SpanRecord, process_id: str, warnings: list[str] | None) -> dict[str, Any]:
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
        "tags": _tags({**span.attributes, **_status_tags(span)}),
        "logs": [_log(event) for event in span.events],
        "processID": process_id,
        "warnings": warnings or None,
    }


def _status_tags(span: SpanRecord) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    if span.scope:
        tags["otel.scope.name"] = span.scope
    if span.scope_version:
        tags["otel.scope.version"] = span.scope_version
    if span.kind in _KIND_TAGS:
        tags["span.kind"] = _KIND_TAGS[span.kind]
    if span.status != "UNSET":
        tags["otel.status_code"] = span.status
    if span.status == "ERROR":
        tags["error"] = True
    if span.status_message:
        tags["otel.status_description"] = span.status_message
    return tags
