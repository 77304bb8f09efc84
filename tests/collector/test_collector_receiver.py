"""The OTLP/HTTP receiver, fed by the real OTel SDK exporter and by hand-written OTLP JSON."""

from __future__ import annotations

import concurrent.futures
import gzip
import json
from pathlib import Path

import httpx
import pytest
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from harness.collector import TraceCollector, load_jsonl
from harness.collector.encode import encode_request
from harness.errors import HarnessConfigError
from harness.spans import SpanRecord
from harness.wait import wait_until
from tests.collector.otlp_samples import CHILD_ID, ROOT_ID, TRACE_ID, json_request

JSON = {"Content-Type": "application/json"}
PROTO = {"Content-Type": "application/x-protobuf"}


def test_sdk_spans_arrive_with_attributes_links_and_service(
    collector: TraceCollector, tracer_provider: TracerProvider
) -> None:
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /notes", kind=SpanKind.SERVER) as root:
        root.set_attribute("note.id", 42)
        with tracer.start_as_current_span("note.attempt") as child:
            child.set_attribute("note.attempt", 2)
            child.set_attribute("rq.job.id", "job-1")
            child.add_event("stage.done", {"stage": "langdetect"})
            child.set_status(StatusCode.ERROR, "timed out")

    spans = collector.wait_for(lambda s: True, timeout=10, count=2)
    by_name = {s.name: s for s in spans}
    parent, attempt = by_name["POST /notes"], by_name["note.attempt"]
    assert parent.trace_id == attempt.trace_id == format(root.get_span_context().trace_id, "032x")
    assert (
        attempt.parent_span_id == parent.span_id == format(root.get_span_context().span_id, "016x")
    )
    assert parent.parent_span_id is None
    assert {s.service for s in spans} == {"notepipe-test"}
    assert parent.resource["deployment.environment"] == "ci"
    assert parent.kind == "SERVER"
    assert attempt.kind == "INTERNAL"
    assert parent.note_id == 42
    assert attempt.attributes == {"note.attempt": 2, "rq.job.id": "job-1"}
    assert (attempt.status, attempt.status_message) == ("ERROR", "timed out")
    assert attempt.events[0]["name"] == "stage.done"
    assert attempt.events[0]["attributes"] == {"stage": "langdetect"}
    assert 0 < parent.start_ns <= attempt.start_ns <= attempt.end_ns <= parent.end_ns

    assert collector.for_note(42) == collector.by_trace(parent.trace_id) == spans
    assert collector.for_note(43) == []
    assert collector.stats.spans == 2
    assert collector.stats.requests == 2  # SimpleSpanProcessor: one request per span


def test_otlp_json_is_accepted(collector: TraceCollector, http: httpx.Client) -> None:
    response = http.post(collector.traces_url, json=json_request(note_id=7))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    spans = collector.by_trace(TRACE_ID.upper())
    root, child = spans
    assert (root.span_id, root.parent_span_id) == (ROOT_ID, None)
    assert (child.span_id, child.parent_span_id) == (CHILD_ID, ROOT_ID)
    assert root.service == "json-svc"
    assert root.resource == {"service.name": "json-svc", "host.name": "box"}
    assert root.attributes == {
        "note.id": 7,
        "http.status": 201,
        "ratio": 0.5,
        "ok": True,
        "tags": ["a", "b"],
    }
    assert (root.kind, root.status) == ("SERVER", "OK")
    assert (child.kind, child.status, child.status_message) == ("PRODUCER", "ERROR", "boom")
    assert (root.start_ns, root.end_ns) == (1544712660000000000, 1544712661000000000)
    assert child.events == (
        {"name": "enqueued", "time_ns": 1544712660500000000, "attributes": {"queue": "notes"}},
    )
    assert collector.for_note(7) == spans


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_gzip_bodies_are_accepted(
    collector: TraceCollector, http: httpx.Client, encoding: str
) -> None:
    if encoding == "json":
        headers, body = JSON, json.dumps(json_request()).encode()
    else:
        raw = encode_request(_json_spans(collector, http))
        collector.clear()
        headers, body = PROTO, raw.SerializeToString()

    response = http.post(
        collector.traces_url,
        content=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"},
    )

    assert response.status_code == 200, response.text
    assert [s.span_id for s in collector.by_trace(TRACE_ID)] == [ROOT_ID, CHILD_ID]


def test_protobuf_response_is_an_export_response(
    collector: TraceCollector, http: httpx.Client
) -> None:
    response = http.post(
        collector.traces_url,
        content=ExportTraceServiceRequest().SerializeToString(),
        headers=PROTO,
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()


@pytest.mark.parametrize(
    ("headers", "body", "needle"),
    [
        (JSON, b"{not json", "not valid JSON"),
        (JSON, b"[1, 2]", "must be an object"),
        (JSON, b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', "hex"),
        (JSON, b'{"resourceSpans": [{"resource": 5}]}', "ExportTraceServiceRequest"),
        (PROTO, b"\xff\xff\xff\xff", "protobuf"),
        ({**JSON, "Content-Encoding": "gzip"}, b"not gzip", "gzip"),
    ],
)
def test_malformed_body_is_400_and_server_keeps_serving(
    collector: TraceCollector,
    http: httpx.Client,
    headers: dict[str, str],
    body: bytes,
    needle: str,
) -> None:
    response = http.post(collector.traces_url, content=body, headers=headers)

    assert response.status_code == 400
    if response.headers["Content-Type"] == "application/json":
        message = response.json()["message"]
    else:
        message = Status.FromString(response.content).message
    assert needle in message
    assert collector.stats.rejected_requests == 1
    assert http.post(collector.traces_url, json=json_request()).status_code == 200
    assert len(collector.spans()) == 2


def test_other_content_types_paths_and_methods(
    collector: TraceCollector, http: httpx.Client
) -> None:
    assert (
        http.post(
            collector.traces_url, content=b"x", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert http.post(collector.traces_url, content=b"{}").status_code == 415
    assert (
        http.post(collector.traces_url, json={}, headers={"Content-Encoding": "br"}).status_code
        == 415
    )
    assert http.post(collector.endpoint + "/v1/metrics", json={}).status_code == 404
    assert http.get(collector.endpoint + "/").status_code == 404
    not_allowed = http.get(collector.traces_url)
    assert (not_allowed.status_code, not_allowed.headers["Allow"]) == (405, "POST")
    assert http.post(collector.traces_url, json={}).status_code == 200


def test_content_type_parameters_and_chunked_bodies(
    collector: TraceCollector, http: httpx.Client
) -> None:
    body = json.dumps(json_request()).encode()

    response = http.post(
        collector.traces_url,
        content=iter([body[:100], body[100:]]),  # an iterator: sent chunked
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 200, response.text
    assert len(collector.spans()) == 2


def test_spans_with_invalid_ids_are_a_partial_success(
    collector: TraceCollector, http: httpx.Client
) -> None:
    document = json_request()
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "abcd"

    response = http.post(collector.traces_url, json=document)

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "span_id" in partial["errorMessage"]
    assert [s.span_id for s in collector.spans()] == [ROOT_ID]
    assert collector.stats.rejected_spans == 1


def test_spans_are_appended_to_the_jsonl_file(
    collector: TraceCollector, http: httpx.Client, tmp_path: Path
) -> None:
    http.post(collector.traces_url, json=json_request(note_id=1))
    collector.clear()
    assert collector.spans() == []
    document = json_request(note_id=2)
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "blob", "value": {"bytesValue": "AAEC"}}
    )
    http.post(collector.traces_url, json=document)

    stored = load_jsonl(tmp_path / "spans.jsonl")

    assert len(stored) == 4
    assert stored[2:] == collector.spans()
    assert stored[2].attributes["blob"] == b"\x00\x01\x02"
    assert {s.note_id for s in stored} == {1, 2, None}


def test_wait_for_times_out_naming_what_it_waited_for(collector: TraceCollector) -> None:
    with pytest.raises(AssertionError, match="the missing span"):
        collector.wait_for(lambda s: s.name == "missing", 0.2, describe="the missing span")


def test_stop_is_idempotent_and_frees_the_port(tmp_path: Path) -> None:
    collector = TraceCollector()
    collector.start()
    collector.start()
    url = collector.traces_url
    collector.stop()
    collector.stop()

    with httpx.Client(trust_env=False) as http, pytest.raises(httpx.ConnectError):
        http.post(url, json={})


def test_binds_loopback_only() -> None:
    with pytest.raises(HarnessConfigError, match="loopback"):
        TraceCollector(host="0.0.0.0")


def test_concurrent_exporters(collector: TraceCollector, http: httpx.Client) -> None:
    def post(i: int) -> int:
        document = json_request(note_id=i)
        for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            span["traceId"] = f"{i + 1:032x}"
        return http.post(collector.traces_url, json=document).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, range(40))) == {200}

    wait_until(lambda: collector.stats.spans == 80, 5, describe="80 spans")
    assert len(collector.for_note(17)) == 2


def _json_spans(collector: TraceCollector, http: httpx.Client) -> list[SpanRecord]:
    http.post(collector.traces_url, json=json_request()).raise_for_status()
    return collector.spans()
