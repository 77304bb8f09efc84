"""Witnesses that can fail, structured causes, recoveries and result integrity: each
invariant on a synthetic history where it must say ``invalid`` (or ``unknown``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from harness.checker import CheckResult, FaultWindow, History, check
from harness.checker.history import LedgerEvent
from harness.spans import ATTEMPT_SPAN, ATTR_LEASE_UNTIL
from tests.checker.checker_synth import GRACE, LAG, Params, build, ns

P = Params(max_attempts=3, retry_intervals=(2.0, 5.0), job_timeout=30.0, tolerance_s=1.0)
CONFIG = P.config()


def run(history: History, **config: object) -> CheckResult:
    return check(history, P.config(**config) if config else CONFIG)


def attempt_spans(history: History, note_id: int = 1, attempt: int | None = None) -> list[object]:
    return [
        s
        for s in history.spans
        if s.name == ATTEMPT_SPAN
        and s.note_id == note_id
        and (attempt is None or s.attributes.get("note.attempt") == attempt)
    ]


def without_spans(history: History, note_id: int, attempt: int) -> History:
    drop = {id(s) for s in attempt_spans(history, note_id, attempt)}
    return replace(history, spans=tuple(s for s in history.spans if id(s) not in drop))


def end_of(history: History, attempt: int, note_id: int = 1) -> LedgerEvent:
    return next(
        e
        for e in history.events
        if e.note_id == note_id and e.attempt == attempt and e.from_status == "processing"
    )


def with_event(history: History, old: LedgerEvent, new: LedgerEvent) -> History:
    return replace(history, events=tuple(new if e is old else e for e in history.events))


# --- the trace witness --------------------------------------------------------------


def test_no_spans_at_all_is_unknown_never_valid() -> None:
    result = run(replace(build(P, [["ok"], ["error", "ok"]]), spans=()))
    assert result.verdict == "unknown"
    assert result.missing_inputs["spans"].startswith("the collector received no spans")
    assert result.invariants["traces_agree"] == "skipped: spans missing"


def test_a_missing_span_of_an_attempt_that_ended_by_itself_is_unknown() -> None:
    history = without_spans(build(P, [["error", "ok"], ["ok"]]), 1, 1)
    result = run(history)
    assert result.verdict == "unknown", result.reasons
    assert any("trace witness incomplete" in r and "note 1 attempt 1" in r for r in result.reasons)
    assert [(t.note_id, t.attempt, t.cause) for t in result.telemetry_loss] == [(1, 1, "error")]


def test_a_killed_attempts_missing_span_is_telemetry_loss_only() -> None:
    result = run(build(P, [["kill", "ok"]]))
    assert result.verdict == "valid", result.reasons
    assert [(t.attempt, t.cause) for t in result.telemetry_loss] == [(1, "lease_expired")]


def test_a_span_lost_with_its_killed_worker_process_is_excused() -> None:
    history = without_spans(build(P, [["ok"]]), 1, 1)
    done = end_of(history, 1).at
    kill = FaultWindow(
        "kill_worker", "worker-0", done + timedelta(seconds=0.1), done + timedelta(seconds=0.6)
    )
    assert run(replace(history, faults=(kill,))).verdict == "valid"


def test_a_completed_attempt_with_two_spans_is_invalid() -> None:
    history = build(P, [["ok"]])
    (span,) = attempt_spans(history)
    twin = replace(span, span_id="e" * 16)  # type: ignore[type-var]
    result = run(replace(history, spans=(*history.spans, twin)))
    (v,) = result.violations_of("traces_agree")
    assert "2 attempt spans" in v.message


def test_a_completed_attempt_whose_span_reports_another_outcome_is_invalid() -> None:
    history = build(P, [["ok"]])
    for outcome in ("fenced", "unknown", "retry"):
        spans = tuple(
            replace(s, attributes={**s.attributes, "note.outcome": outcome})
            if s.name == ATTEMPT_SPAN
            else s
            for s in history.spans
        )
        result = run(replace(history, spans=spans))
        assert result.violations_of("traces_agree"), outcome
    # "unknown" is honest when a fault cut off the attempt's last write
    spans = tuple(
        replace(s, attributes={**s.attributes, "note.outcome": "unknown"})
        if s.name == ATTEMPT_SPAN
        else s
        for s in history.spans
    )
    assert run(replace(history, spans=spans)).violations_of("traces_agree")
    done = end_of(history, 1).at
    cut = FaultWindow("toxic", "postgres", done - timedelta(seconds=1), done + timedelta(seconds=1))
    assert not run(replace(history, spans=spans, faults=(cut,))).violations


# --- structured causes ----------------------------------------------------------------


def test_an_attempt_end_without_a_cause_is_invalid() -> None:
    history = build(P, [["error", "ok"]])
    end = end_of(history, 1)
    result = run(with_event(history, end, replace(end, cause=None)))
    (v,) = result.violations_of("attempt_causes_expected")
    assert "without a recorded cause" in v.message


def test_error_text_does_not_classify_only_the_cause_does() -> None:
    history = build(P, [["error", "ok"]])
    end = end_of(history, 1)
    lying = replace(end, error="attempt 1 lost its lease (worker w1 stopped renewing it)")
    assert run(with_event(history, end, lying)).verdict == "valid"
    wrong = replace(end, cause="completed")
    assert run(with_event(history, end, wrong)).violations_of("attempt_causes_expected")


def test_a_healthy_attempt_lost_to_lease_expiry_without_a_fault_is_invalid() -> None:
    # a healthy (long) note whose lease ran out while its worker lived: the heartbeat failed
    history = replace(build(P, [["kill", "ok"]]), faults=())
    result = run(history)
    (v,) = result.violations_of("attempt_causes_expected")
    assert v.attempt == 1 and "lease_expired" in v.message and "completed" in v.message


def test_failed_after_lease_expiries_without_faults_is_not_as_designed() -> None:
    history = replace(build(P, [["kill", "kill", "kill"]]), faults=())
    result = run(history)
    assert result.classifications[1].note_class.value == "failed_unexpectedly"
    assert result.violations_of("failures_as_designed")


# --- recoveries ---------------------------------------------------------------------


def test_a_recovery_before_lease_until_plus_grace_steals_a_live_lease() -> None:
    history = build(P, [["kill", "ok"]])
    end = end_of(history, 1)
    assert end.lease_until is not None
    early = replace(end, at=end.lease_until + timedelta(seconds=GRACE / 2))
    result = run(with_event(history, end, early))
    (v,) = result.violations_of("recovery_only_of_dead_attempts")
    assert "a live lease was taken" in v.message


def test_a_recovery_that_records_a_wrong_lease_until_is_caught_by_the_attempts_evidence() -> None:
    history = build(P, [["error", "kill", "ok"]])
    end = end_of(history, 2)
    assert end.lease_until is not None
    # the reconciler claims the lease ran out long ago; the claim says otherwise
    forged = replace(end, lease_until=end.lease_until - timedelta(seconds=4))
    (v,) = run(with_event(history, end, forged)).violations_of("recovery_only_of_dead_attempts")
    assert "its claim shows" in v.message
    # ... and so does a heartbeat renewal the attempt's span reports
    claim = next(
        e
        for e in history.events
        if e.note_id == 1 and e.attempt == 2 and e.to_status == "processing"
    )
    span = replace(
        attempt_spans(history, 1, 1)[0],  # type: ignore[type-var]
        span_id="d" * 16,
        attributes={
            "note.id": 1,
            "note.attempt": 2,
            "note.outcome": "fenced",
            ATTR_LEASE_UNTIL: (end.lease_until + timedelta(seconds=3)).isoformat(),
        },
    )
    moved = with_event(
        history, end, replace(end, at=end.lease_until + timedelta(seconds=GRACE + 1))
    )
    result = run(replace(moved, spans=(*moved.spans, span)))
    assert claim.lease_until is not None
    assert any(
        "its span shows" in v.message
        for v in result.violations_of("recovery_only_of_dead_attempts")
    )


def test_a_live_attempt_losing_its_lease_with_no_fault_over_the_expiry_is_invalid() -> None:
    # the heartbeat gave up after a short blip: the attempt ran on, its lease ran out,
    # the reconciler took the note, and the attempt's late completion was fenced
    history = build(P, [["kill", "ok"]])
    end = end_of(history, 1)
    assert end.lease_until is not None
    (api_span,) = [s for s in history.spans if s.note_id == 1 and s.name != ATTEMPT_SPAN][:1]
    claim_ns = ns(
        next(e for e in history.events if e.note_id == 1 and e.to_status == "processing").at
    )
    zombie = replace(
        api_span,  # type: ignore[type-var]
        span_id="c" * 16,
        name=ATTEMPT_SPAN,
        start_ns=claim_ns,
        end_ns=ns(end.at + timedelta(seconds=3)),
        attributes={"note.id": 1, "note.attempt": 1, "note.outcome": "fenced"},
    )
    blip_at = end.lease_until - timedelta(seconds=1.5)
    blip = FaultWindow("toxic", "postgres", blip_at, blip_at + timedelta(seconds=0.3))
    lived = replace(history, spans=(*history.spans, zombie), faults=(blip,))
    result = run(lived, heartbeat_interval=0.5)
    (v,) = result.violations_of("recovery_only_of_dead_attempts")
    assert "stopped renewing its lease" in v.message
    # a pause over the expiry explains it (the zombie of test_pause)
    pause = FaultWindow("pause_worker", "worker-1", end.lease_until - timedelta(seconds=3), end.at)
    paused = replace(lived, faults=(pause,))
    assert not run(paused, heartbeat_interval=0.5).violations_of("recovery_only_of_dead_attempts")
    # living on only a little past the expiry is still living on: the deadline tolerance
    # (seconds, for process scheduling) does not stretch the span-to-ledger clock slack
    barely = replace(zombie, end_ns=ns(end.lease_until + timedelta(seconds=GRACE + 0.6)))
    assert run(
        replace(history, spans=(*history.spans, barely), faults=(blip,)),
        heartbeat_interval=0.5,
        tolerance_s=1.5,
    ).violations_of("recovery_only_of_dead_attempts")
    # and an attempt that ended (its last write failed) before its lease ran out lived no longer
    early = replace(zombie, end_ns=ns(end.lease_until - timedelta(seconds=0.5)))
    ended = replace(history, spans=(*history.spans, early), faults=(blip,))
    assert not run(ended, heartbeat_interval=0.5).violations_of("recovery_only_of_dead_attempts")


def test_a_recovery_without_the_lease_it_saw_is_invalid() -> None:
    history = build(P, [["kill", "ok"]])
    end = end_of(history, 1)
    (v,) = run(with_event(history, end, replace(end, lease_until=None))).violations_of(
        "recovery_only_of_dead_attempts"
    )
    assert "without recording the lease_until" in v.message


def test_a_lazy_recovery_is_invalid_unless_a_fault_delayed_it() -> None:
    history = build(P, [["kill", "ok"]])
    end = end_of(history, 1)
    assert end.lease_until is not None
    delay = timedelta(seconds=LAG + 2)
    lazy_at = end.at + delay
    shifted = replace(
        history,
        events=tuple(
            replace(e, at=e.at + delay) if e.note_id == 1 and e.at >= end.at else e
            for e in history.events
        ),
    )
    (v,) = run(shifted).violations_of("recovery_within_lag")
    assert "allowed" in v.message
    # a worker killed meanwhile does not slow the reconciler down: still too late
    kill = FaultWindow("kill_worker", "worker-2", lazy_at - delay / 2, lazy_at - delay / 3)
    assert run(replace(shifted, faults=(*shifted.faults, kill))).violations_of(
        "recovery_within_lag"
    )
    outage = FaultWindow("proxy_down", "postgres", end.lease_until, lazy_at)
    assert not run(replace(shifted, faults=(*shifted.faults, outage))).violations_of(
        "recovery_within_lag"
    )


# --- retry gaps on one clock ---------------------------------------------------------


def test_a_retry_claimed_milliseconds_early_is_invalid() -> None:
    history = build(P, [["error", "ok"]])
    end = end_of(history, 1)
    claim = next(
        e
        for e in history.events
        if e.note_id == 1 and e.attempt == 2 and e.to_status == "processing"
    )
    exact = with_event(
        history, claim, replace(claim, at=end.at + timedelta(seconds=P.retry_intervals[0]))
    )
    assert not run(exact).violations_of("retry_gaps_respected")
    early_at = end.at + timedelta(seconds=P.retry_intervals[0] - 0.02)
    early = with_event(history, claim, replace(claim, at=early_at))
    (v,) = run(early).violations_of("retry_gaps_respected")
    assert "ms tolerance" in v.message


# --- result integrity ----------------------------------------------------------------


def test_result_integrity_recomputes_the_enrichment() -> None:
    history = build(P, [["ok"]])
    note = history.notes[0]
    assert run(history).verdict == "valid"
    for bad in ({}, {"content_hash": {"sha256": "0" * 64}}, {"content_hash": "x"}):
        result = run(replace(history, notes=(replace(note, enrichment=bad),)))
        (v,) = result.violations_of("result_integrity")
        assert v.note_id == 1
    stages = ("normalize", "content_hash")
    result = run(history, expected_stages=stages)
    assert (
        "lacks the configured stage(s) ['normalize']"
        in result.violations_of("result_integrity")[0].message
    )
