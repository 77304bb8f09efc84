"""OTLP/HTTP bodies on the wire: media types, content encodings, response bodies."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.collector import otlp_json
from harness.collector.errors import MalformedRequest, RequestTooLarge, UnsupportedMediaType

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)

#: Largest body accepted, before and after decompression.
MAX_BODY_BYTES = 64 * 1024 * 1024

_ZLIB_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


@dataclass(frozen=True)
class RawRequest:
    """A request body exactly as received, with the headers that describe it."""

    body: bytes
    content_type: str
    content_encoding: str = ""


def media_type(content_type: str | None) -> str:
    """``"application/json; charset=utf-8"`` → ``"application/json"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_media_type(media: str) -> None:
    """Raise :class:`UnsupportedMediaType` unless ``media`` is an OTLP encoding."""
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not supported; use {PROTOBUF} or {JSON}"
        )


def decompress(body: bytes, content_encoding: str | None) -> bytes:
    """The body with ``gzip`` / ``deflate`` / ``identity`` Content-Encoding removed."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    wbits = _ZLIB_WBITS.get(encoding)
    if wbits is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; use gzip or none"
        )
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise MalformedRequest(f"body is not valid {encoding}: {exc}") from exc
    if len(data) > MAX_BODY_BYTES:
        raise RequestTooLarge(f"decompressed body exceeds {MAX_BODY_BYTES} bytes")
    if not inflater.eof:
        raise MalformedRequest(f"{encoding} body is truncated")
    return data


def parse_body(body: bytes, media: str) -> ExportTraceServiceRequest:
    """Decode an ``ExportTraceServiceRequest`` in either OTLP encoding."""
    check_media_type(media)
    if media == JSON:
        return otlp_json.parse_request(body)
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError, whichever backend raised it
        raise MalformedRequest(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from exc
    return request


def encode_response(response: ExportTraceServiceResponse, media: str) -> bytes:
    """The success body, in the request's encoding."""
    if media == JSON:
        return otlp_json.dumps(response)
    return bytes(response.SerializeToString())


def encode_status(code: int, message: str, media: str) -> tuple[bytes, str]:
    """An error body (a ``google.rpc.Status``) and its Content-Type.

    Protobuf when the request was protobuf, otherwise JSON so it stays readable.
    """
    if media == PROTOBUF:
        return bytes(Status(code=code, message=message).SerializeToString()), PROTOBUF
    return json.dumps({"code": code, "message": message}).encode(), JSON
