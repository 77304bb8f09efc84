"""Example-based tests: one small history per classification, and the verdict's edges."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from harness.checker import CheckConfig, CheckResult, FaultWindow, History, NoteClass, check
from harness.checker.readers import trace_id_from_traceparent
from tests.checker.checker_synth import T0, Params, build, job_of, trace_of

P = Params(max_attempts=3, retry_intervals=(2.0, 5.0), job_timeout=30.0, tolerance_s=1.0)
CONFIG = P.config()


def run(history: History, **config: object) -> CheckResult:
    return check(history, P.config(**config) if config else CONFIG)


def cls(result: CheckResult, note_id: int = 1) -> NoteClass:
    return result.classifications[note_id].note_class


def long_after(history: History) -> History:
    """The same history, observed well past every deadline."""
    return replace(history, observed_at=T0 + timedelta(seconds=CONFIG.deadline_s + 600))


def test_completed() -> None:
    result = run(build(P, [["ok"]]))
    assert cls(result) is NoteClass.COMPLETED
    assert result.verdict == "valid"
    assert result.counts["completed"] == 1
    assert not result.telemetry_loss


def test_recovered_after_a_kill_reports_telemetry_loss_not_a_violation() -> None:
    result = run(build(P, [["kill", "ok"]]))
    assert cls(result) is NoteClass.RECOVERED
    assert result.verdict == "valid", result.reasons
    (loss,) = result.telemetry_loss
    assert (loss.note_id, loss.attempt, loss.recovered) == (1, 1, True)
    assert loss.trace_ids == (trace_of(1),)


@pytest.mark.parametrize(
    "plan", [["error", "timeout", "timeout"], ["error", "kill", "kill"], ["error"] * 3]
)
def test_failed_after_the_whole_budget_is_as_designed(plan: list[str]) -> None:
    result = run(build(P, [plan]))
    assert cls(result) is NoteClass.FAILED_AS_DESIGNED
    assert result.verdict == "valid", result.reasons


def test_failed_with_causes_its_content_never_asked_for_is_unexpected() -> None:
    # content "[chaos:raise-until=2][chaos:sleep=31]": attempt 3 must time out, not error
    history = build(P, [["error", "error", "timeout"]])
    events = tuple(
        replace(e, cause="error") if e.attempt == 3 and e.from_status == "processing" else e
        for e in history.events
    )
    result = run(replace(history, events=events))
    assert cls(result) is NoteClass.FAILED_UNEXPECTEDLY
    assert "attempt 3 ended with cause 'error'" in result.classifications[1].reason
    assert result.violations_of("failures_as_designed")
    assert result.violations_of("attempt_causes_expected")


def test_a_non_retryable_failure_the_content_did_not_ask_for_is_unexpected() -> None:
    result = run(build(P, [["fatal"]]))
    assert cls(result) is NoteClass.FAILED_UNEXPECTEDLY
    assert result.verdict == "invalid"


def test_failed_early_without_a_reason_is_unexpected() -> None:
    result = run(build(P, [["error", "fail"]]))
    assert cls(result) is NoteClass.FAILED_UNEXPECTEDLY
    assert result.verdict == "invalid"
    assert result.violations_of("failures_as_designed")


def test_lost_when_accepted_but_absent_from_the_ledger() -> None:
    history = build(P, [["ok"], ["ok"]])
    history = replace(
        history,
        notes=tuple(n for n in history.notes if n.id != 2),
        events=tuple(e for e in history.events if e.note_id != 2),
    )
    result = run(history)
    assert cls(result, 2) is NoteClass.LOST
    # the worker's span for it disagrees with the ledger as well
    assert {v.invariant for v in result.violations} == {"no_lost_notes", "traces_agree"}
    (violation,) = result.violations_of("no_lost_notes")
    assert violation.note_id == 2
    assert violation.trace_ids == (trace_of(2),)  # from the API span
    assert "absent from the ledger" in violation.message


def test_lost_when_queued_past_its_deadline_with_no_live_job() -> None:
    result = run(long_after(build(P, [[]])))
    assert cls(result) is NoteClass.LOST
    assert {v.invariant for v in result.violations} == {"no_lost_notes", "terminal_within_deadline"}


def test_stuck_when_processing_past_its_deadline_with_a_live_job() -> None:
    result = run(long_after(build(P, [["error", "hang"]])))
    assert cls(result) is NoteClass.STUCK
    assert "note-1-a1" in result.classifications[1].reason
    names = {v.invariant for v in result.violations}
    assert names == {"terminal_within_deadline", "redis_quiescent"}


def test_stuck_not_lost_when_the_rq_snapshot_is_missing() -> None:
    result = run(replace(long_after(build(P, [[]])), rq=None))
    assert cls(result) is NoteClass.STUCK
    assert result.verdict == "invalid"  # the deadline is broken whatever RQ says


def test_in_flight_before_its_deadline_makes_the_verdict_unknown() -> None:
    result = run(build(P, [["ok"], ["hang"]]))
    assert cls(result, 2) is NoteClass.IN_FLIGHT
    assert result.verdict == "unknown"
    assert not result.violations  # the started job is expected while in flight
    assert any("in flight" in r and "[2]" in r for r in result.reasons)


def test_a_fault_window_over_its_life_moves_the_deadline() -> None:
    history = long_after(build(P, [[]]))
    assert run(history).verdict == "invalid"
    healed = history.observed_at - timedelta(seconds=10)
    fault = FaultWindow("proxy_down", "redis", T0 + timedelta(seconds=1), healed)
    result = run(replace(history, faults=(fault,)))
    assert cls(result) is NoteClass.IN_FLIGHT
    assert result.verdict == "unknown"
    assert result.deadlines[1].start == healed


def test_duplicated_when_completed_twice() -> None:
    history = build(P, [["ok"]])
    done = history.events[-1]
    history = replace(
        history, events=(*history.events, replace(done, at=done.at + timedelta(seconds=1)))
    )
    result = run(history)
    assert cls(result) is NoteClass.DUPLICATED
    assert result.violations_of("single_completion")


def test_duplicated_when_completed_after_failing() -> None:
    history = build(P, [["fatal"]])
    end = history.events[-1]
    late = replace(end, to_status="completed", error=None, at=end.at + timedelta(seconds=1))
    result = run(replace(history, events=(*history.events, late)))
    assert cls(result) is NoteClass.DUPLICATED
    assert result.violations_of("no_transition_after_terminal")


def test_overlapping_attempts_are_flagged() -> None:
    history = build(P, [["error", "ok"]])
    events = list(history.events)
    end1 = next(i for i, e in enumerate(events) if e.from_status == "processing")
    del events[end1]  # attempt 1 never ended, attempt 2 claimed anyway
    result = run(replace(history, events=tuple(events)))
    assert result.violations_of("no_overlapping_attempts")
    assert result.violations_of("lifecycle_transitions")


def test_a_completed_note_without_enrichment_is_flagged() -> None:
    history = build(P, [["ok"]])
    note = replace(history.notes[0], enrichment_present=False)
    assert run(replace(history, notes=(note,))).violations_of("single_completion")


def test_a_completed_span_without_a_ledger_completion_is_flagged() -> None:
    history = build(P, [["error", "ok"]])
    spans = tuple(
        replace(s, attributes={**s.attributes, "note.outcome": "completed"})
        if s.attributes.get("note.attempt") == 1
        else s
        for s in history.spans
    )
    (violation,) = run(replace(history, spans=spans)).violations
    assert violation.invariant == "traces_agree"
    assert violation.attempt == 1
    assert trace_of(1) in str(violation)


def test_skipped_and_unclaimed_spans_are_not_disagreements() -> None:
    history = build(P, [["ok"]])
    span = next(s for s in history.spans if s.name == "note.attempt")
    skipped = replace(span, span_id="a" * 16, attributes={"note.id": 1, "note.outcome": "skipped"})
    unclaimed = replace(span, span_id="b" * 16, attributes={"note.id": 1})
    result = run(replace(history, spans=(*history.spans, skipped, unclaimed)))
    assert result.verdict == "valid", result.reasons


def test_a_leftover_job_status_names_its_note() -> None:
    history = build(P, [["ok"]])
    assert history.rq is not None
    rq = replace(history.rq, job_statuses={job_of(1, 1): "started"})
    (violation,) = run(replace(history, rq=rq)).violations
    assert violation.invariant == "redis_quiescent"
    assert violation.note_id == 1
    assert violation.job_id == job_of(1, 1)
    assert "'started'" in violation.message


def test_an_unreadable_ledger_is_unknown_and_checks_nothing() -> None:
    history = replace(build(P, [["ok"]]), input_errors={"ledger": "connection refused"})
    result = run(history)
    assert result.verdict == "unknown"
    assert set(result.invariants.values()) == {"skipped: ledger unreadable"}


def test_missing_spans_skip_the_trace_check_only() -> None:
    history = replace(build(P, [["ok"]]), spans=(), input_errors={"spans": "collector down"})
    result = run(history)
    assert result.verdict == "unknown"
    assert result.invariants["traces_agree"] == "skipped: spans missing"
    assert result.invariants["no_lost_notes"] == "ok"
    assert not result.telemetry_loss


def test_to_dict_is_json_and_names_notes_and_traces() -> None:
    history = build(P, [["ok"], ["ok"]])
    history = replace(history, events=tuple(e for e in history.events if e.note_id != 2))
    data = json.loads(json.dumps(run(history).to_dict()))
    assert data["verdict"] == "invalid"
    assert data["notes"]["1"]["class"] == "completed"
    assert data["counts"]["total"] == 2
    assert any(v["note_id"] == 2 and v["trace_ids"] == [trace_of(2)] for v in data["violations"])
    assert data["invariants"]["lifecycle_transitions"] == "violated"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_trace_id_from_traceparent(value: str | None, expected: str | None) -> None:
    assert trace_id_from_traceparent(value) == expected


def test_config_from_settings_uses_the_pipeline_deadline() -> None:
    from notepipe.deadlines import time_to_terminal
    from notepipe.settings import load_settings

    settings = load_settings(retry_max=2, retry_intervals=(3.0, 7.0), job_timeout=20.0)
    config = CheckConfig.from_settings(settings, tolerance_s=0.5)
    assert config.max_attempts == 3
    assert config.deadline_s == time_to_terminal(settings)
    assert [config.retry_interval(k) for k in (1, 2, 3)] == [
        settings.retry_interval(k) for k in (1, 2, 3)
    ]
