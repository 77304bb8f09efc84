"""The harness's trace collector: an OTLP/HTTP receiver, span storage, forwarding, export."""

from __future__ import annotations

from harness.collector.collector import CollectorStats, TraceCollector
from harness.collector.errors import (
    CollectorError,
    MalformedRequest,
    RequestTooLarge,
    UnsupportedMediaType,
)
from harness.collector.export import read_text, write_jaeger_json, write_otlp_jsonl
from harness.collector.forwarder import Forwarder, ForwarderStats
from harness.collector.receiver import OtlpReceiver
from harness.collector.store import SpanStore, load_jsonl

__all__ = [
    "CollectorError",
    "CollectorStats",
    "Forwarder",
    "ForwarderStats",
    "MalformedRequest",
    "OtlpReceiver",
    "RequestTooLarge",
    "SpanStore",
    "TraceCollector",
    "UnsupportedMediaType",
    "load_jsonl",
    "read_text",
    "write_jaeger_json",
    "write_otlp_jsonl",
]
