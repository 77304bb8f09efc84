"""The report's span files read by the real Jaeger.

* ``jaeger.json`` against Jaeger's own answer for the same spans, field by field;
  only the differences listed in :data:`harness.jaeger.ALLOWED_DIFFERENCES` pass.
* ``spans.otlp.jsonl.gz``: Jaeger accepts every line over OTLP/HTTP as it is.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from harness.collector import TraceCollector, read_text, write_jaeger_json, write_otlp_jsonl
from harness.collector.export import OTLPJSONFILE_MAX_LINE
from harness.jaeger import JaegerQuery, JaegerServer, compare_documents, compare_traces
from harness.spans import SpanRecord
from harness.wait import wait_until
from tests.collector.otlp_samples import TRACE_ID, json_request

pytestmark = pytest.mark.jaeger

_JSON = {"Content-Type": "application/json"}


@pytest.fixture
def forwarding(jaeger: JaegerServer, tmp_path: Path) -> Iterator[TraceCollector]:
    collector = TraceCollector(tmp_path / "spans.jsonl", forward_endpoint=jaeger.otlp_endpoint)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def _rich_spans(collector: TraceCollector) -> str:
    """Spans with every feature the file encodes; returns their trace id."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "svc-a", "deployment.environment": "ci"})
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(collector.traces_url)))
    tracer = provider.get_tracer("notepipe.test", "1.2")
    try:
        with tracer.start_as_current_span("POST /notes", kind=SpanKind.SERVER) as root:
            root.set_attribute("note.id", 9)
            root.set_attribute("big", 2**60)
            root.set_attribute("html", "<a&b>")
            root.set_attribute("strings", ["<x>", "é"])
            root.set_attribute("bools", [True, False])
            root.set_attribute("ints", [1, 2**60])
            root.set_attribute("ratio", 0.1)
            root.set_attribute("huge", 1e20)
            with tracer.start_as_current_span("note.attempt", kind=SpanKind.CONSUMER) as child:
                child.set_attribute("scores", [0.5, 1.5])
                child.add_event("retry", {"zeta": 1, "alpha": "x", "big": 2**60})
                child.add_event("plain")
                child.record_exception(ValueError("bad <thing>"))
                child.set_status(StatusCode.ERROR, "boom")
                with tracer.start_as_current_span("inner") as inner:
                    inner.set_status(StatusCode.OK)
            for kind in (SpanKind.CLIENT, SpanKind.PRODUCER):
                with tracer.start_as_current_span(f"kind {kind.name}", kind=kind):
                    pass
        trace_id = root.get_span_context().trace_id
        # A span whose parent was never exported (a killed attempt's child, say).
        lost = SpanContext(trace_id, 0x1234567890ABCDEF, True, TraceFlags(1))
        context = otel_trace.set_span_in_context(NonRecordingSpan(lost))
        with tracer.start_as_current_span("orphan", context=context):
            pass
    finally:
        provider.shutdown()
    return f"{trace_id:032x}"


def _forwarded(collector: TraceCollector, spans: int) -> None:
    def delivered() -> bool:
        forward = collector.stats.forward
        assert forward is not None
        assert not forward.errors, forward.last_error
        return forward.spans >= spans

    wait_until(delivered, 15, describe=f"{spans} spans forwarded to Jaeger")


def test_jaeger_json_matches_jaegers_answer_field_by_field(
    forwarding: TraceCollector, jaeger_query: JaegerQuery, tmp_path: Path
) -> None:
    rich = _rich_spans(forwarding)
    httpx.post(forwarding.traces_url, json=json_request()).raise_for_status()
    spans = forwarding.spans()
    _forwarded(forwarding, len(spans))
    path = write_jaeger_json(spans, tmp_path / "jaeger.json")
    ours = json.loads(path.read_text())
    assert {t["traceID"] for t in ours["data"]} == {rich, TRACE_ID}

    for trace_id in (rich, TRACE_ID):
        count = len(forwarding.by_trace(trace_id))
        jaeger_query.wait_for_trace(trace_id, spans=count, timeout=15)
        theirs = jaeger_query.trace_document(trace_id)
        assert theirs is not None
        mine = {**ours, "data": [t for t in ours["data"] if t["traceID"] == trace_id]}
        assert compare_documents(mine, theirs) == []

    # What the comparison covers really shows up in Jaeger's answer.
    answer = jaeger_query.trace(rich)
    assert answer is not None
    orphan = next(s for s in answer["spans"] if s["operationName"] == "orphan")
    assert orphan["warnings"] == [
        "invalid parent span IDs=1234567890abcdef; skipping clock skew adjustment"
    ]
    root = next(s for s in answer["spans"] if s["operationName"] == "POST /notes")
    assert {"key": "big", "type": "int64", "value": str(2**60)} in root["tags"]


def _first_trace(document: dict[str, Any]) -> dict[str, Any]:
    return dict(document["data"][0])


def test_the_comparison_finds_what_differs() -> None:
    span = SpanRecord(TRACE_ID, "00000000000000a1", None, "root", "svc", 1_000, 9_000)
    child = SpanRecord(
        TRACE_ID, "00000000000000a2", "00000000000000a1", "child", "svc", 2_000, 3_000,
        attributes={"note.id": 4},
    )  # fmt: skip
    from harness.collector.jaeger import to_jaeger

    base = _first_trace(to_jaeger([span, child]))
    assert compare_traces(base, copy.deepcopy(base)) == []
    reordered = copy.deepcopy(base)
    reordered["spans"].reverse()
    reordered["processes"] = {"p9": reordered["processes"]["p1"]}
    for s in reordered["spans"]:
        s["processID"] = "p9"
    assert compare_traces(base, reordered) == []  # documented: order and process keys

    mutations = {
        "tag value": lambda t: t["spans"][1]["tags"][0].update(value=5),
        "tag type": lambda t: t["spans"][1]["tags"][0].update(value="4", type="string"),
        "missing span": lambda t: t["spans"].pop(),
        "reference": lambda t: t["spans"][1].update(references=[]),
        "start time": lambda t: t["spans"][0].update(startTime=2),
        "service": lambda t: t["processes"]["p1"].update(serviceName="other"),
        "span warnings": lambda t: t["spans"][0].update(warnings=["x"]),
        "trace warnings": lambda t: t.update(warnings=["x"]),
        "extra field": lambda t: t["spans"][0].update(flags=1),
    }
    for name, mutate in mutations.items():
        changed = copy.deepcopy(base)
        mutate(changed)
        assert compare_traces(base, changed), f"a changed {name} went unnoticed"


def test_jaeger_accepts_every_line_of_the_otlp_file(
    jaeger: JaegerServer, jaeger_query: JaegerQuery, tmp_path: Path
) -> None:
    spans = [
        SpanRecord(
            trace_id=f"{t + 1:032x}",
            span_id=f"{t * 100 + s + 1:016x}",
            parent_span_id=f"{t * 100 + 1:016x}" if s else None,
            name=f"step {s}",
            service=f"svc-{s % 3}",
            start_ns=1_700_000_000_000_000_000 + t * 10**6 + s * 1000,
            end_ns=1_700_000_000_000_000_000 + t * 10**6 + s * 1000 + 500,
            attributes={"note.id": t, "payload": "x" * 2000},
            scope="notepipe.test",
        )
        for t in range(150)
        for s in range(6)
    ]
    path = write_otlp_jsonl(spans, tmp_path / "spans.otlp.jsonl.gz", max_line_bytes=256 * 1024)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert len(lines) >= 5
    assert max(len(line) for line in lines) <= min(256 * 1024, OTLPJSONFILE_MAX_LINE)
    assert read_text(path).count("\n") == len(lines)

    with httpx.Client(timeout=30, trust_env=False) as client:
        for number, line in enumerate(lines, start=1):
            response = client.post(f"{jaeger.otlp_endpoint}/v1/traces", content=line, headers=_JSON)
            assert response.status_code == 200, f"line {number}: {response.text[:300]}"
            assert "rejected" not in response.text, f"line {number}: {response.text[:300]}"

    count = jaeger_query.count_spans(s.trace_id for s in spans)
    assert (count.traces_found, count.spans) == (150, len(spans)), count
