"""The OTLP JSON encoding of trace requests: proto3 JSON, except ids are hex.

OTLP/HTTP JSON differs from the protobuf JSON mapping only in ``traceId`` /
``spanId`` / ``parentSpanId`` (hex, not base64); keys are lowerCamelCase,
int64 are strings, enums are integers, unknown fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# google.protobuf ships no type information; ``types-protobuf`` would remove this ignore.
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.collector.errors import MalformedRequest

_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def parse_request(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP JSON ``ExportTraceServiceRequest``; raise :class:`MalformedRequest`."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedRequest("OTLP JSON body must be an object with 'resourceSpans'")
    _convert_ids(document, _hex_to_base64)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise MalformedRequest(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from exc
    return request


Message = ExportTraceServiceRequest | ExportTraceServiceResponse


def to_dict(message: Message) -> dict[str, Any]:
    """A request (or response) as an OTLP JSON document, ids in hex."""
    document: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    _convert_ids(document, _base64_to_hex)
    return document


def dumps(message: Message) -> bytes:
    """A request (or response) as OTLP JSON bytes."""
    return json.dumps(to_dict(message), separators=(",", ":")).encode()


def _convert_ids(document: dict[str, Any], convert: Any) -> None:
    for resource_spans in _dicts(document.get("resourceSpans", document.get("resource_spans"))):
        scopes = resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))
        for scope_spans in _dicts(scopes):
            for span in _dicts(scope_spans.get("spans")):
                _convert_keys(span, convert)
                for link in _dicts(span.get("links")):
                    _convert_keys(link, convert)


def _dicts(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedRequest(f"expected a JSON array, got {type(value).__name__}")
    return [item for item in value if isinstance(item, dict)]


def _convert_keys(span: dict[str, Any], convert: Any) -> None:
    for key in _ID_KEYS:
        if key in span:
            span[key] = convert(key, span[key])


def _hex_to_base64(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedRequest(f"{key} must be a hex string, got {value!r}")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise MalformedRequest(f"{key} is not hex: {value!r}") from exc
    return base64.b64encode(raw).decode()


def _base64_to_hex(key: str, value: Any) -> str:
    try:
        return base64.b64decode(str(value), validate=True).hex()
    except binascii.Error as exc:  # pragma: no cover - MessageToDict writes valid base64
        raise ValueError(f"{key} is not base64: {value!r}") from exc
