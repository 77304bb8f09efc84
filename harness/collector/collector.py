"""The harness's trace collector: receiver + span store + optional forwarding to Jaeger."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.collector.decode import decode_request
from harness.collector.forwarder import Forwarder, ForwarderStats
from harness.collector.receiver import OtlpReceiver
from harness.collector.store import SpanPredicate, SpanStore
from harness.collector.wire import RawRequest
from harness.spans import SpanRecord


@dataclass(frozen=True)
class CollectorStats:
    """Counts since start (``clear()`` does not reset them)."""

    requests: int  # accepted (HTTP 200)
    rejected_requests: int  # answered 4xx
    spans: int
    rejected_spans: int  # invalid ids, reported as OTLP partial success
    forward: ForwarderStats | None


class TraceCollector:
    """Receives OTLP/HTTP traces on loopback, keeps them per run, optionally forwards them.

    ``jsonl_path``: append every span to this JSONL file. ``forward_endpoint``:
    an OTLP/HTTP base URL (``http://jaeger:4318``) that gets every accepted
    request body unchanged, from a background thread.
    """

    def __init__(
        self,
        jsonl_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        forward_endpoint: str | None = None,
        forward_queue: int = 1000,
        forward_timeout: float = 5.0,
    ) -> None:
        self.store = SpanStore(jsonl_path)
        self.receiver = OtlpReceiver(self._accept, host=host, port=port)
        self.forwarder = (
            Forwarder(forward_endpoint, max_queue=forward_queue, timeout=forward_timeout)
            if forward_endpoint
            else None
        )
        self._lock = threading.Lock()
        self._spans = 0
        self._rejected_spans = 0

    # lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start forwarding (if configured) and receiving; a no-op when running."""
        if self.forwarder is not None:
            self.forwarder.start()
        self.receiver.start()

    def stop(self) -> None:
        """Stop receiving, drain the forward queue briefly, close the JSONL file; idempotent."""
        self.receiver.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        self.store.close()

    def __enter__(self) -> TraceCollector:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The ``OTEL_EXPORTER_OTLP_ENDPOINT`` for pipeline processes."""
        return self.receiver.endpoint

    @property
    def traces_url(self) -> str:
        """``<endpoint>/v1/traces`` (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)."""
        return self.endpoint + "/v1/traces"

    # queries ---------------------------------------------------------------------------

    def spans(self) -> list[SpanRecord]:
        return self.store.spans()

    def by_trace(self, trace_id: str) -> list[SpanRecord]:
        return self.store.by_trace(trace_id)

    def for_note(self, note_id: int) -> list[SpanRecord]:
        return self.store.for_note(note_id)

    def wait_for(
        self, predicate: SpanPredicate, timeout: float, *, count: int = 1, describe: str = ""
    ) -> list[SpanRecord]:
        return self.store.wait_for(predicate, timeout, count=count, describe=describe)

    def clear(self) -> None:
        """Forget stored spans (counters and the JSONL file are kept)."""
        self.store.clear()

    @property
    def stats(self) -> CollectorStats:
        with self._lock:
            spans, rejected_spans = self._spans, self._rejected_spans
        return CollectorStats(
            requests=self.receiver.requests,
            rejected_requests=self.receiver.rejected,
            spans=spans,
            rejected_spans=rejected_spans,
            forward=self.forwarder.stats if self.forwarder is not None else None,
        )

    # the receiver's sink ---------------------------------------------------------------

    def _accept(
        self, request: ExportTraceServiceRequest, raw: RawRequest
    ) -> ExportTraceServiceResponse:
        decoded = decode_request(request)
        self.store.add(decoded.spans)
        with self._lock:
            self._spans += len(decoded.spans)
            self._rejected_spans += decoded.rejected
        if self.forwarder is not None:
            self.forwarder.submit(raw, len(decoded.spans) + decoded.rejected)
        if not decoded.rejected:
            return ExportTraceServiceResponse()
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(
                rejected_spans=decoded.rejected, error_message=decoded.error
            )
        )
