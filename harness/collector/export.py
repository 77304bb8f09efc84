"""Write spans as files that real tools read: OTLP JSON Lines and Jaeger's JSON.

* :func:`write_otlp_jsonl`: the OpenTelemetry file-exporter format
  (``specification/protocol/file-exporter.md``): JSON Lines, one compact OTLP/JSON
  ``ExportTraceServiceRequest`` per line. Whole traces stay on one line; each line
  stays under ``max_line_bytes`` (default 512 KiB: under the Collector
  ``otlpjsonfile`` receiver's 1 MiB default line limit and far under the 20 MiB
  request-body limit of Collector-based OTLP/HTTP servers such as Jaeger v2), so
  every line can be POSTed as it is to ``/v1/traces``.
* :func:`write_jaeger_json`: the JSON of Jaeger's query API (``/api/traces``), which
  Jaeger UI's "Search → JSON File" upload reads.

A path ending in ``.gz`` is written gzip-compressed (deterministic: no name, mtime 0).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.collector import otlp_json
from harness.collector.encode import encode_request
from harness.collector.jaeger import to_jaeger
from harness.spans import SpanRecord

#: Bytes per OTLP JSON line (newline excluded).
OTLP_LINE_BYTES = 512 * 1024
#: The Collector's ``otlpjsonfile`` receiver reads lines up to this size by default.
OTLPJSONFILE_MAX_LINE = 1024 * 1024
#: Collector-based OTLP/HTTP servers (Jaeger v2 included) reject larger request bodies.
COLLECTOR_MAX_BODY = 20 * 1024 * 1024


def otlp_lines(
    spans: Iterable[SpanRecord], *, max_line_bytes: int = OTLP_LINE_BYTES
) -> Iterator[bytes]:
    """Compact OTLP/JSON export requests, each at most ``max_line_bytes`` long.

    Traces are packed whole, in order of their first span; a trace too large for
    one line is split between lines (span by span, never a span cut). A single
    span larger than the limit gets a line of its own.
    """
    pending: list[bytes] = []
    size = len(_line([]))
    for trace in _traces(spans):
        for piece in _pieces(trace, max_line_bytes - len(_line([]))):
            if pending and size + len(piece) + 1 > max_line_bytes:
                yield _line(pending)
                pending, size = [], len(_line([]))
            size += len(piece) + (1 if pending else 0)  # a comma between entries
            pending.append(piece)
    if pending:
        yield _line(pending)


def write_otlp_jsonl(
    spans: Iterable[SpanRecord], path: Path, *, max_line_bytes: int = OTLP_LINE_BYTES
) -> Path:
    """Every span as OTLP JSON Lines (see :func:`otlp_lines`); ``.gz`` compresses."""
    with _atomic(path) as out:
        for line in otlp_lines(spans, max_line_bytes=max_line_bytes):
            out.write(line + b"\n")
    return path


def write_jaeger_json(spans: Iterable[SpanRecord], path: Path) -> Path:
    """Jaeger's ``/api/traces`` JSON (compact), for Jaeger UI's "Search → JSON File" upload."""
    document = to_jaeger(spans)
    with _atomic(path) as out:
        out.write(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
        out.write(b"\n")
    return path


def read_text(path: Path) -> str:
    """A report file's text, gunzipped when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def _traces(spans: Iterable[SpanRecord]) -> list[list[SpanRecord]]:
    traces: dict[str, list[SpanRecord]] = {}
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        traces.setdefault(span.trace_id, []).append(span)
    return list(traces.values())


def _pieces(spans: list[SpanRecord], limit: int) -> Iterator[bytes]:
    """``spans`` as ``resourceSpans`` entries (JSON, brackets stripped), halved until each
    piece fits in ``limit`` bytes."""
    entries = otlp_json.to_dict(encode_request(spans)).get("resourceSpans", [])
    piece = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()[1:-1]
    if len(piece) <= limit or len(spans) == 1:
        yield piece
        return
    middle = len(spans) // 2
    yield from _pieces(spans[:middle], limit)
    yield from _pieces(spans[middle:], limit)


def _line(pieces: list[bytes]) -> bytes:
    return b'{"resourceSpans":[' + b",".join(pieces) + b"]}"


@contextmanager
def _atomic(path: Path) -> Iterator[io.BufferedIOBase]:
    """A binary file written beside ``path`` and renamed over it when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as raw:
            if path.suffix == ".gz":
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                    yield zipped
            else:
                yield raw
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
