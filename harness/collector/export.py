"""Write a run's spans as report files: OTLP JSON and Jaeger-UI-importable JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from harness.collector import otlp_json
from harness.collector.encode import encode_request
from harness.collector.jaeger import to_jaeger
from harness.spans import SpanRecord


def write_otlp_json(spans: Iterable[SpanRecord], path: Path) -> Path:
    """One OTLP JSON ``ExportTraceServiceRequest`` (re-postable to ``/v1/traces``)."""
    document = otlp_json.to_dict(encode_request(spans))
    return _write(path, document)


def write_jaeger_json(spans: Iterable[SpanRecord], path: Path) -> Path:
    """Jaeger's ``/api/traces`` JSON, for Jaeger UI's "Search → JSON File" upload."""
    return _write(path, to_jaeger(spans))


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
