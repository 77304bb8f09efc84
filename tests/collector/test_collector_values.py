"""Attribute values through OTLP AnyValue, OTLP JSON and the JSONL store, and body limits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from harness.collector import SpanStore, TraceCollector, load_jsonl, wire
from harness.collector.encode import encode_request
from harness.collector.values import from_any_value, to_any_value
from harness.spans import SpanRecord


def test_any_value_round_trip() -> None:
    value = {"s": "x", "i": -3, "f": 1.25, "b": False, "raw": b"\x00", "l": [1, "a", [True]]}
    assert from_any_value(to_any_value(value)) == value
    assert from_any_value(to_any_value(None)) is None
    assert from_any_value(to_any_value(2**70)) == str(2**70)  # beyond int64: sent as a string
    assert from_any_value(to_any_value((1, 2))) == [1, 2]


def test_store_jsonl_round_trip_and_reopen(tmp_path: Path) -> None:
    span = SpanRecord(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent_span_id=None,
        name="n",
        service="svc",
        start_ns=1,
        end_ns=2,
        attributes={"note.id": "12", "raw": b"\x01"},
        events=({"name": "e", "time_ns": 1, "attributes": {}},),
    )
    store = SpanStore(tmp_path / "run" / "spans.jsonl")
    store.add([span])
    store.close()
    store.add([span])

    assert load_jsonl(tmp_path / "run" / "spans.jsonl") == [span, span]
    assert store.for_note(12) == [span, span]  # a string note.id still matches


def test_bodies_over_the_limit_are_413(
    collector: TraceCollector, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "MAX_BODY_BYTES", 1000)
    big = json.dumps({"resourceSpans": [], "pad": "x" * 5000}).encode()

    plain = http.post(collector.traces_url, content=big, headers={"Content-Type": wire.JSON})
    zipped = http.post(
        collector.traces_url,
        content=gzip.compress(big),
        headers={"Content-Type": wire.JSON, "Content-Encoding": "gzip"},
    )

    assert (plain.status_code, zipped.status_code) == (413, 413)
    assert "exceeds 1000" in zipped.json()["message"]


def test_encode_groups_by_resource() -> None:
    def span(service: str, span_id: str) -> SpanRecord:
        return SpanRecord("ab" * 16, span_id, None, "n", service, 1, 2)

    request = encode_request([span("a", "01" * 8), span("b", "02" * 8), span("a", "03" * 8)])

    assert [len(rs.scope_spans[0].spans) for rs in request.resource_spans] == [2, 1]
