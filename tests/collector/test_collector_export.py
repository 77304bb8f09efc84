"""Report exports: OTLP JSON Lines (re-postable to a receiver) and Jaeger UI's upload JSON."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from harness.collector import TraceCollector, read_text, write_jaeger_json, write_otlp_jsonl
from harness.collector.export import otlp_lines
from harness.spans import SpanRecord
from tests.collector.otlp_samples import CHILD_ID, ROOT_ID, TRACE_ID, json_request


def _sdk_spans(collector: TraceCollector, provider: TracerProvider) -> list[SpanRecord]:
    tracer = provider.get_tracer("export")
    with tracer.start_as_current_span("POST /notes", kind=SpanKind.SERVER) as root:
        root.set_attribute("note.id", 9)
        with tracer.start_as_current_span("note.attempt", kind=SpanKind.CONSUMER) as child:
            child.set_attribute("scores", [0.5, 1.5])
            child.add_event("retry", {"attempt": 1})
            child.set_status(StatusCode.ERROR, "boom")
    return collector.wait_for(lambda s: True, 10, count=2)


def test_otlp_jsonl_round_trips_through_the_receiver(
    collector: TraceCollector,
    tracer_provider: TracerProvider,
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    sdk_spans = _sdk_spans(collector, tracer_provider)
    http.post(collector.traces_url, json=json_request(service="other")).raise_for_status()
    original = collector.spans()
    path = write_otlp_jsonl(original, tmp_path / "report" / "spans.otlp.jsonl.gz")

    raw = gzip.decompress(path.read_bytes())
    lines = raw.decode().splitlines()
    assert raw.endswith(b"\n") and len(lines) == 1  # two small traces: one line
    assert "\n" not in lines[0].strip() and ": " not in lines[0]  # compact
    document = json.loads(lines[0])
    services = [
        _attr(rs["resource"]["attributes"], "service.name") for rs in document["resourceSpans"]
    ]
    assert sorted(services) == ["notepipe-test", "other"]
    scopes = {ss["scope"]["name"] for rs in document["resourceSpans"] for ss in rs["scopeSpans"]}
    assert scopes == {"export", "manual"}  # the spans' own instrumentation scopes
    first_span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first_span["traceId"]) == 32
    assert first_span["traceId"] == first_span["traceId"].lower()
    assert isinstance(first_span["startTimeUnixNano"], str)

    with TraceCollector() as again:
        for line in lines:
            response = http.post(again.traces_url, content=line.encode(), headers=_JSON)
            assert response.status_code == 200, response.text
        assert again.spans() == original
    assert len(sdk_spans) == 2


def _many_spans(traces: int, spans_per_trace: int, padding: int = 200) -> list[SpanRecord]:
    return [
        SpanRecord(
            trace_id=f"{t + 1:032x}",
            span_id=f"{t * 1000 + s + 1:016x}",
            parent_span_id=f"{t * 1000 + 1:016x}" if s else None,
            name=f"span-{s}",
            service=f"svc-{s % 3}",
            start_ns=1_700_000_000_000_000_000 + t * 1_000_000 + s,
            end_ns=1_700_000_000_000_000_000 + t * 1_000_000 + s + 500,
            attributes={"note.id": t, "pad": "x" * padding},
            scope="load",
        )
        for t in range(traces)
        for s in range(spans_per_trace)
    ]


def test_otlp_lines_stay_under_the_limit_and_keep_traces_whole() -> None:
    spans = _many_spans(traces=300, spans_per_trace=8)
    limit = 64 * 1024
    lines = list(otlp_lines(spans, max_line_bytes=limit))

    assert len(lines) > 3
    assert all(len(line) <= limit for line in lines)
    seen: dict[str, int] = {}
    total = 0
    for number, line in enumerate(lines):
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    total += 1
                    assert seen.setdefault(span["traceId"], number) == number, "trace split"
    assert total == len(spans)


def test_a_trace_larger_than_a_line_is_split_span_by_span() -> None:
    spans = _many_spans(traces=1, spans_per_trace=40, padding=3000)
    lines = list(otlp_lines(spans, max_line_bytes=32 * 1024))
    assert len(lines) >= 4
    assert all(len(line) <= 32 * 1024 for line in lines)
    ids = [
        span["spanId"]
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert sorted(ids) == sorted(s.span_id for s in spans)


def test_jaeger_json_structure(
    collector: TraceCollector, http: httpx.Client, tmp_path: Path
) -> None:
    http.post(collector.traces_url, json=json_request(note_id=5)).raise_for_status()
    path = write_jaeger_json(collector.spans(), tmp_path / "jaeger.json.gz")

    document = json.loads(read_text(path))
    [trace] = document["data"]
    assert trace["traceID"] == TRACE_ID
    assert trace["warnings"] is None
    assert trace["processes"] == {
        "p1": {
            "serviceName": "json-svc",
            "tags": [{"key": "host.name", "type": "string", "value": "box"}],
        }
    }
    root, child = trace["spans"]
    assert (root["spanID"], root["operationName"], root["references"]) == (
        ROOT_ID,
        "POST /notes",
        [],
    )
    assert child["references"] == [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": ROOT_ID}]
    assert child["spanID"] == CHILD_ID
    # 1544712660.3 s → 0.5 s long, in µs
    assert (root["startTime"], root["duration"]) == (1544712660000000, 1000000)
    assert (child["startTime"], child["duration"]) == (1544712660300000, 500000)
    assert {s["processID"] for s in trace["spans"]} == {"p1"}
    assert all("flags" not in s for s in trace["spans"])  # Jaeger v2 writes none either
    assert [(t["key"], t["type"], json.dumps(t["value"])) for t in root["tags"]] == [
        ("http.status", "int64", "201"),
        ("note.id", "int64", "5"),
        ("ok", "bool", "true"),
        ("otel.scope.name", "string", '"manual"'),
        ("otel.scope.version", "string", '"1"'),
        ("otel.status_code", "string", '"OK"'),
        ("ratio", "float64", "0.5"),
        ("span.kind", "string", '"server"'),
        ("tags", "string", json.dumps('["a","b"]')),
    ]  # sorted by key, as Jaeger's query service answers
    assert {"key": "error", "type": "bool", "value": True} in child["tags"]
    assert {"key": "otel.status_description", "type": "string", "value": "boom"} in child["tags"]
    assert child["logs"] == [
        {
            "timestamp": 1544712660500000,
            "fields": [
                {"key": "event", "type": "string", "value": "enqueued"},
                {"key": "queue", "type": "string", "value": "notes"},
            ],
        }
    ]


def test_jaeger_json_from_the_sdk_groups_traces_and_processes(
    collector: TraceCollector,
    tracer_provider: TracerProvider,
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    sdk_spans = _sdk_spans(collector, tracer_provider)
    http.post(collector.traces_url, json=json_request()).raise_for_status()

    document = json.loads(write_jaeger_json(collector.spans(), tmp_path / "j.json").read_text())

    assert len(document["data"]) == 2
    sdk_trace = next(t for t in document["data"] if t["traceID"] == sdk_spans[0].trace_id)
    assert [p["serviceName"] for p in sdk_trace["processes"].values()] == ["notepipe-test"]
    by_name = {s["operationName"]: s for s in sdk_trace["spans"]}
    root, child = by_name["POST /notes"], by_name["note.attempt"]
    assert child["references"][0]["spanID"] == root["spanID"]
    record = {s.name: s for s in sdk_spans}["note.attempt"]
    assert child["startTime"] == record.start_ns // 1000
    assert child["duration"] == (record.end_ns - record.start_ns) // 1000
    assert {"key": "span.kind", "type": "string", "value": "consumer"} in child["tags"]


def test_jaeger_tags_follow_jaegers_own_encoding() -> None:
    from harness.collector.jaeger import tag, to_jaeger

    assert tag("big", 2**60) == {"key": "big", "type": "int64", "value": str(2**60)}
    assert tag("small", -(2**53) + 1)["value"] == -(2**53) + 1
    assert tag("arr", ["<x>", "é", 1]) == {
        "key": "arr",
        "type": "string",
        "value": '["\\u003cx\\u003e","é",1]',
    }
    orphan = SpanRecord(TRACE_ID, CHILD_ID, ROOT_ID, "lost parent", "svc", 1000, 2000)
    [trace] = to_jaeger([orphan])["data"]
    [span] = trace["spans"]
    assert span["warnings"] == [
        f"invalid parent span IDs={ROOT_ID}; skipping clock skew adjustment"
    ]
    assert {"key": "span.kind", "type": "string", "value": "internal"} in span["tags"]


_JSON = {"Content-Type": "application/json"}


def _attr(attributes: list[dict[str, Any]], key: str) -> Any:
    return next(a["value"]["stringValue"] for a in attributes if a["key"] == key)


def test_clock_skew_warnings_follow_jaegers_adjuster() -> None:
    from harness.collector.jaeger_warnings import go_duration, span_warnings

    assert [go_duration(n) for n in (0, 999, 1500, -2_944_911_432, 3_600_500_000_000)] == [
        "0s",
        "999ns",
        "1.5µs",
        "-2.944911432s",
        "1h0m0.5s",
    ]
    root = SpanRecord(TRACE_ID, "00000000000000a1", None, "POST", "api", 1_000, 2_000)
    inside = SpanRecord(TRACE_ID, "00000000000000a2", root.span_id, "in", "api", 1_200, 1_800)
    after = SpanRecord(TRACE_ID, "00000000000000a3", root.span_id, "async", "w", 5_000, 5_100)
    longer = SpanRecord(TRACE_ID, "00000000000000a4", root.span_id, "long", "w", 900, 9_000)
    warnings = span_warnings([root, inside, after, longer], lambda s: "")
    # after: centred in the parent would start at 1000 + (1000 - 100) // 2 = 1450
    assert warnings == {
        after.span_id: ["clock skew adjustment disabled; not applying calculated delta of -3.55µs"],
        longer.span_id: ["clock skew adjustment disabled; not applying calculated delta of 100ns"],
    }
    # the same host (an ``ip`` tag) inherits the parent's delta instead of computing one
    same_host = span_warnings([root, after], lambda s: "10.0.0.1")
    assert same_host == {}
