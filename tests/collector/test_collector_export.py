"""Report exports: OTLP JSON (re-postable to a receiver) and Jaeger UI's upload JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from harness.collector import TraceCollector, write_jaeger_json, write_otlp_json
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


def test_otlp_json_round_trips_through_the_receiver(
    collector: TraceCollector,
    tracer_provider: TracerProvider,
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    sdk_spans = _sdk_spans(collector, tracer_provider)
    http.post(collector.traces_url, json=json_request(service="other")).raise_for_status()
    original = collector.spans()
    path = write_otlp_json(original, tmp_path / "report" / "spans.otlp.json")

    document = json.loads(path.read_text())
    services = [
        _attr(rs["resource"]["attributes"], "service.name") for rs in document["resourceSpans"]
    ]
    assert sorted(services) == ["notepipe-test", "other"]
    first_span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first_span["traceId"]) == 32
    assert first_span["traceId"] == first_span["traceId"].lower()
    assert isinstance(first_span["startTimeUnixNano"], str)

    with TraceCollector() as again:
        response = http.post(again.traces_url, content=path.read_bytes(), headers=_JSON)
        assert response.status_code == 200, response.text
        assert again.spans() == original
    assert len(sdk_spans) == 2


def test_jaeger_json_structure(
    collector: TraceCollector, http: httpx.Client, tmp_path: Path
) -> None:
    http.post(collector.traces_url, json=json_request(note_id=5)).raise_for_status()
    path = write_jaeger_json(collector.spans(), tmp_path / "jaeger.json")

    document = json.loads(path.read_text())
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
    assert {s["flags"] for s in trace["spans"]} == {1}
    assert {(t["key"], t["type"], json.dumps(t["value"])) for t in root["tags"]} >= {
        ("note.id", "int64", "5"),
        ("ratio", "float64", "0.5"),
        ("ok", "bool", "true"),
        ("tags", "string", json.dumps('["a", "b"]')),
        ("span.kind", "string", '"server"'),
        ("otel.status_code", "string", '"OK"'),
    }
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


_JSON = {"Content-Type": "application/json"}


def _attr(attributes: list[dict[str, Any]], key: str) -> Any:
    return next(a["value"]["stringValue"] for a in attributes if a["key"] == key)
