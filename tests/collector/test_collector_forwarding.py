"""Forwarding received requests, unchanged, to another OTLP/HTTP endpoint."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from harness.collector import Forwarder, ForwarderStats, TraceCollector
from harness.collector.wire import RawRequest
from harness.wait import wait_until
from tests.collector.otlp_samples import TRACE_ID, json_request


@pytest.fixture
def downstream() -> Iterator[TraceCollector]:
    """A second receiver standing in for Jaeger."""
    with TraceCollector() as c:
        yield c


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_requests_are_forwarded_unchanged(downstream: TraceCollector, http: httpx.Client) -> None:
    with TraceCollector(forward_endpoint=downstream.endpoint) as upstream:
        response = http.post(upstream.traces_url, json=json_request())
        assert response.status_code == 200

        forwarded = downstream.wait_for(lambda s: s.trace_id == TRACE_ID, 10, count=2)
        assert forwarded == upstream.spans()

        # the downstream stores before it answers: the upstream counts a moment later
        def counted() -> ForwarderStats | None:
            stats = upstream.stats.forward
            return stats if stats is not None and stats.forwarded == 1 else None

        stats = wait_until(counted, 5, describe="the forward to be counted")
        assert (stats.forwarded, stats.errors, stats.dropped) == (1, 0, 0)


def test_protobuf_gzip_is_forwarded_with_its_headers(downstream: TraceCollector) -> None:
    with TraceCollector(forward_endpoint=downstream.endpoint + "/") as upstream:
        provider = TracerProvider(resource=Resource.create({"service.name": "gz"}))
        exporter = OTLPSpanExporter(endpoint=upstream.traces_url, compression=Compression.Gzip)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("zipped"):
            pass
        provider.shutdown()

        [span] = downstream.wait_for(lambda s: s.name == "zipped", 10)
        assert span.service == "gz"
        assert upstream.spans() == [span]


def test_dead_forward_target_does_not_block_reception(http: httpx.Client, unused_port: int) -> None:
    with TraceCollector(forward_endpoint=f"http://127.0.0.1:{unused_port}") as upstream:
        for note_id in range(5):
            assert http.post(upstream.traces_url, json=json_request(note_id=note_id)).is_success

        assert len(upstream.spans()) == 10
        wait_until(
            lambda: upstream.stats.forward and upstream.stats.forward.errors == 5,
            10,
            describe="5 forwarding errors",
        )
        forward = upstream.stats.forward
        assert forward is not None
        assert "ConnectError" in forward.last_error


def test_hanging_forward_target_does_not_block_reception_or_stop(
    http: httpx.Client, black_hole: str
) -> None:
    upstream = TraceCollector(forward_endpoint=black_hole, forward_queue=2, forward_timeout=1.0)
    upstream.start()
    try:
        started = time.monotonic()
        for note_id in range(10):
            assert http.post(upstream.traces_url, json=json_request(note_id=note_id)).is_success
        # blocking on the forward would take 10 x the 1 s forward timeout
        assert time.monotonic() - started < 5.0
        assert len(upstream.spans()) == 20
    finally:
        started = time.monotonic()
        upstream.stop()
    assert time.monotonic() - started < 10.0
    forward = upstream.stats.forward
    assert forward is not None
    assert forward.forwarded == 0
    assert forward.dropped + forward.errors == 10


def test_a_full_queue_drops_and_counts() -> None:
    forwarder = Forwarder("http://127.0.0.1:9", max_queue=2)  # not started: nothing drains
    request = RawRequest(b"{}", "application/json")

    assert [forwarder.submit(request) for _ in range(4)] == [True, True, False, False]
    assert forwarder.stats.dropped == 2
    forwarder.stop()  # never started: a no-op
