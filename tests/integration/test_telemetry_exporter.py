"""The OTLP exporter's requests session: proxy settings from the environment, read once."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from harness.collector import TraceCollector
from notepipe.telemetry import otlp_span_exporter, otlp_traces_url

SPAN = ReadableSpan(
    name="note.attempt",
    context=SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1)),
    resource=Resource.create({"service.name": "exporter-test"}),
    attributes={"note.id": 7},
    start_time=1_000,
    end_time=2_000,
)


class RecordingProxy:
    """A loopback HTTP proxy that answers every request 200 and keeps its request lines."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(65536)):
                    head += chunk
                self.request_lines.append(head.split(b"\r\n", 1)[0].decode())
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self._server.close()
        self._thread.join(5)


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    proxy = RecordingProxy()
    yield proxy
    proxy.close()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_the_traces_url_follows_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert otlp_traces_url() == "http://localhost:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert otlp_traces_url() == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:9/spans")
    assert otlp_traces_url() == "http://other:9/spans"


def test_spans_go_through_the_environments_proxy_as_read_at_start(
    monkeypatch: pytest.MonkeyPatch, proxy: RecordingProxy
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.invalid:4318")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    exporter = otlp_span_exporter()
    try:
        monkeypatch.delenv("HTTP_PROXY")  # read once: the exporter keeps the proxy it got
        assert exporter.export([SPAN]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert proxy.request_lines == ["POST http://otel-collector.invalid:4318/v1/traces HTTP/1.1"]


def test_no_proxy_sends_spans_straight_to_a_loopback_collector(
    monkeypatch: pytest.MonkeyPatch, proxy: RecordingProxy
) -> None:
    with TraceCollector() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        exporter = otlp_span_exporter()
        try:
            assert exporter.export([SPAN]) == SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        assert [(s.name, s.service) for s in collector.spans()] == [
            ("note.attempt", "exporter-test")
        ]
    assert proxy.request_lines == []
