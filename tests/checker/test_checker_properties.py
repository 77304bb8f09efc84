"""Property tests: valid synthetic histories pass; each kind of corruption is caught."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checker import CheckResult, History, LedgerEvent, NoteClass, check
from harness.spans import ATTEMPT_SPAN
from tests.checker.checker_synth import Params, build, job_of, valid_case

FAST = settings(max_examples=40, deadline=None)
Case = tuple[Params, list[list[str]], History]
TARGET = 1  # note 1: attempt 1 fails with an error, attempt 2 completes


def assert_flags(result: CheckResult, invariant: str, note_id: int | None = TARGET) -> None:
    assert result.verdict == "invalid", result.reasons
    found = result.violations_of(invariant)
    assert found, f"{invariant} not flagged; got {result.reasons}"
    assert any(v.note_id == note_id for v in found), found
    if note_id is not None:
        hit = next(v for v in found if v.note_id == note_id)
        assert hit.trace_ids, hit
        assert f"note {note_id}" in str(hit)


def note_events(history: History, note_id: int) -> list[LedgerEvent]:
    return [e for e in history.events if e.note_id == note_id]


def claims(history: History, note_id: int = TARGET) -> list[LedgerEvent]:
    return [e for e in note_events(history, note_id) if e.to_status == "processing"]


def attempt_end(history: History, attempt: int, note_id: int = TARGET) -> LedgerEvent:
    return next(
        e
        for e in note_events(history, note_id)
        if e.from_status == "processing" and e.attempt == attempt
    )


def shift_from(history: History, event: LedgerEvent, delta: timedelta) -> History:
    """Move ``event`` and every later event of its note by ``delta``."""
    same = note_events(history, event.note_id)
    later = {id(e) for e in same[same.index(event) :]}
    events = tuple(replace(e, at=e.at + delta) if id(e) in later else e for e in history.events)
    return replace(history, events=events)


@FAST
@given(valid_case())
def test_valid_histories_are_valid(case: Case) -> None:
    params, plans, history = case
    result = check(history, params.config())
    assert result.verdict == "valid", result.reasons
    assert not result.violations
    assert set(result.invariants.values()) == {"ok"}
    assert result.counts["total"] == len(plans)
    ok = sum(
        result.counts[c.value]
        for c in (NoteClass.COMPLETED, NoteClass.RECOVERED, NoteClass.FAILED_AS_DESIGNED)
    )
    assert ok == len(plans)
    killed = sum(plan.count("kill") for plan in plans)
    assert len(result.telemetry_loss) == killed
    assert all(loss.recovered for loss in result.telemetry_loss)
    json.dumps(result.to_dict())


@FAST
@given(valid_case())
def test_a_lost_note_is_flagged(case: Case) -> None:
    params, _, history = case
    lost = replace(
        history,
        notes=tuple(n for n in history.notes if n.id != TARGET),
        events=tuple(e for e in history.events if e.note_id != TARGET),
    )
    result = check(lost, params.config())
    assert_flags(result, "no_lost_notes")
    assert result.classifications[TARGET].note_class is NoteClass.LOST


@FAST
@given(valid_case())
def test_a_double_completion_is_flagged(case: Case) -> None:
    params, _, history = case
    done = note_events(history, TARGET)[-1]
    again = replace(done, at=done.at + timedelta(seconds=1))
    result = check(replace(history, events=(*history.events, again)), params.config())
    assert_flags(result, "single_completion")
    assert result.classifications[TARGET].note_class is NoteClass.DUPLICATED


@FAST
@given(valid_case())
def test_a_short_retry_gap_is_flagged(case: Case) -> None:
    params, _, history = case
    end1, claim2 = attempt_end(history, 1), claims(history)[1]
    assert (end1.to_status, claim2.to_status) == ("queued", "processing")
    wanted = params.retry_interval(1) - 0.02  # the ledger's one clock: milliseconds count
    delta = timedelta(seconds=wanted) - (claim2.at - end1.at)
    result = check(shift_from(history, claim2, delta), params.config())
    assert_flags(result, "retry_gaps_respected")


@FAST
@given(valid_case())
def test_an_over_long_attempt_is_flagged(case: Case) -> None:
    params, _, history = case
    end1 = attempt_end(history, 1)
    longer = shift_from(history, end1, timedelta(seconds=params.job_timeout + params.tolerance_s))
    assert_flags(check(longer, params.config()), "attempt_within_timeout")


@FAST
@given(valid_case(), st.sampled_from(["queued", "processing", "pending"]))
def test_a_transition_after_terminal_is_flagged(case: Case, to: str) -> None:
    params, _, history = case
    done = note_events(history, TARGET)[-1]
    after = replace(done, from_status="completed", to_status=to, at=done.at + timedelta(seconds=1))
    result = check(replace(history, events=(*history.events, after)), params.config())
    assert_flags(result, "no_transition_after_terminal")


@FAST
@given(valid_case())
def test_attempts_over_budget_are_flagged(case: Case) -> None:
    params, plans, _ = case
    over = [["error"] * params.max_attempts + ["ok"], *plans[1:]]
    history = build(params, over)
    result = check(history, params.config())
    assert_flags(result, "attempts_within_budget")


@FAST
@given(valid_case(), st.sampled_from(["queue", "intermediate", "started", "scheduled", "status"]))
def test_non_quiescent_redis_is_flagged(case: Case, where: str) -> None:
    params, _, history = case
    assert history.rq is not None
    job = job_of(TARGET, 2)
    rq = history.rq
    if where == "queue":
        rq = replace(rq, queued_job_ids=(job,))
    elif where == "intermediate":
        rq = replace(rq, intermediate_job_ids=(job,))
    elif where == "started":
        rq = replace(rq, started_job_ids=(job,), started_entries=((f"{job}:x", 1.0),))
    elif where == "scheduled":
        rq = replace(rq, scheduled_job_ids=(job,))
    else:
        rq = replace(rq, job_statuses={**rq.job_statuses, job: "queued"})
    assert_flags(check(replace(history, rq=rq), params.config()), "redis_quiescent")


@FAST
@given(valid_case())
def test_a_span_claiming_a_completion_the_ledger_lacks_is_flagged(case: Case) -> None:
    params, _, history = case
    spans = tuple(
        replace(s, attributes={**s.attributes, "note.outcome": "completed"})
        if s.name == ATTEMPT_SPAN and s.note_id == TARGET and s.attributes["note.attempt"] == 1
        else s
        for s in history.spans
    )
    assert_flags(check(replace(history, spans=spans), params.config()), "traces_agree")


@FAST
@given(valid_case())
def test_a_span_for_an_attempt_the_ledger_never_had_is_flagged(case: Case) -> None:
    params, _, history = case
    span = next(s for s in history.spans if s.name == ATTEMPT_SPAN and s.note_id == TARGET)
    ghost = replace(span, span_id="f" * 16, attributes={**span.attributes, "note.attempt": 9})
    result = check(replace(history, spans=(*history.spans, ghost)), params.config())
    assert_flags(result, "traces_agree")


@FAST
@given(valid_case())
def test_missing_inputs_make_a_valid_history_unknown(case: Case) -> None:
    params, _, history = case
    no_rq = check(replace(history, rq=None), params.config())
    assert no_rq.verdict == "unknown"
    assert no_rq.invariants["redis_quiescent"].startswith("skipped")
    no_ledger = check(
        replace(history, notes=(), events=(), input_errors={"ledger": "connection refused"}),
        params.config(),
    )
    assert no_ledger.verdict == "unknown"
    assert not no_ledger.violations
    assert any("connection refused" in r for r in no_ledger.reasons)
