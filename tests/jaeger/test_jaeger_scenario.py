"""A worker-kill scenario forwarded to the real Jaeger, then read back from its query API.

The killed note's trace in Jaeger holds the API request, the enqueue, each attempt,
the recovery (which names the killed attempt and how it ended) and the fault span,
from the services and with the attributes the report shows; every trace of the
scenario matches ``jaeger.json`` field by field; every forwarded span comes back.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from harness.collector import TraceCollector
from harness.collector.jaeger import to_jaeger
from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.jaeger import JaegerQuery, JaegerServer, compare_traces
from harness.load import LoadSpec
from harness.schedule import Schedule
from harness.wait import wait_until

pytestmark = [pytest.mark.jaeger, pytest.mark.chaos]

SLOW = {"[chaos:sleep=1.0]": 1.0}


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


def _service(trace: dict[str, Any], span: dict[str, Any]) -> str:
    return str(trace["processes"][span["processID"]]["serviceName"])


def test_a_killed_attempt_shows_in_jaeger(
    notepipe_stack: MakeStack,
    notepipe_run: MakeRun,
    trace_collector: TraceCollector,
    folder_jaeger: JaegerServer,
) -> None:
    stack = notepipe_stack(workers=2, proxies=False)
    kill = FaultSpec(
        "kill_at_attempt", at=0.2, duration=0.5, params={"note_index": 0, "attempt": 1}
    )
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=6, rate=10, special=SLOW), Schedule([kill], seed=1)
    )
    assert outcome.result.verdict == "valid", outcome.explain()
    [record] = outcome.faults
    found = re.search(r"\(note (\d+), attempt 1\)", record.target)
    assert found, f"the kill missed its note: {record.target}"
    note_id = int(found.group(1))

    # Everything the collector received went on to Jaeger, and Jaeger returns all of it.
    collected = trace_collector.spans()
    forward = trace_collector.forwarder
    assert forward is not None
    wait_until(
        lambda: forward.stats.spans + forward.stats.lost_spans >= len(collected),
        20,
        describe="the forwarder to deliver every collected span",
    )
    stats = forward.stats
    assert (stats.lost_spans, stats.errors) == (0, 0), stats.last_error
    with JaegerQuery(folder_jaeger.query_url) as jaeger:
        count = jaeger.count_spans({s.trace_id for s in collected})
        print(
            f"spans collected {len(collected)}, forwarded {stats.spans}, "
            f"Jaeger returned {count.spans} in {count.traces_found}/{count.traces_asked} traces"
        )
        assert count.missing_traces == ()
        assert count.spans == len({(s.trace_id, s.span_id) for s in collected}) == stats.spans

        # The killed note's trace.
        # (the scenario's own spans: the collector also holds the calibration's notes)
        [trace_id] = {s.trace_id for s in outcome.history.spans if s.note_id == note_id}
        theirs = jaeger.trace(trace_id)
        assert theirs is not None
        ours = to_jaeger(trace_collector.by_trace(trace_id))["data"][0]
        assert compare_traces(ours, theirs) == []

        spans = theirs["spans"]
        names = Counter(s["operationName"] for s in spans)
        by_name = {s["operationName"]: s for s in spans}
        assert names["POST /notes"] == 1
        assert _service(theirs, by_name["POST /notes"]) == "notepipe-api"
        assert _tags(by_name["POST /notes"])["note.id"] == note_id
        assert names["note.enqueue"] >= 2  # by the API, then the retry after the recovery
        attempts = {
            _tags(s)["note.attempt"]: _tags(s)
            for s in spans
            # a duplicate job that found the note done says "skipped": not an attempt
            if s["operationName"] == "note.attempt" and _tags(s)["note.outcome"] != "skipped"
        }
        assert attempts[2]["note.outcome"] == "completed", attempts
        assert 1 not in attempts  # the killed horse ended no span ...
        recover = by_name["note.recover"]  # ... the recovery says how attempt 1 ended
        assert _tags(recover)["note.attempt"] == 1
        assert _tags(recover)["note.outcome"] == "lease_expired"
        assert _tags(recover)["note.status"] == "queued"
        assert _service(theirs, recover) in {"notepipe-reconciler", "notepipe-worker"}
        fault = by_name["fault.kill_at_attempt"]
        assert _service(theirs, fault) == "notepipe-harness"
        assert _tags(fault)["note.id"] == note_id
        assert _tags(fault)["fault.target"] == record.target
        for span in spans:  # every span carries the report's attributes
            assert _tags(span).get("note.id", note_id) == note_id

        # Every trace of the scenario: the file's structure is Jaeger's.
        for other in {s.trace_id for s in outcome.history.spans}:
            answer = jaeger.trace(other)
            assert answer is not None, f"Jaeger lacks trace {other}"
            expected = to_jaeger(trace_collector.by_trace(other))["data"][0]
            assert compare_traces(expected, answer) == [], other
