"""The deadline oracle on synthetic histories: budgets fixed before the run, never its speed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from harness.checker import CheckConfig, CheckResult, FaultWindow, History, check
from harness.checker.history import LedgerEvent, LedgerNote, RqSnapshot
from harness.spans import ATTEMPT_SPAN, SpanRecord
from tests.checker.checker_synth import QUEUE, T0, enrichment_for, ns, trace_of

TTT = 20.0  # time_to_terminal of these runs
CONFIG = CheckConfig(
    max_attempts=1,
    retry_intervals=(1.0,),
    job_timeout=10.0,
    deadline_s=TTT,
    tolerance_s=0.5,
    service_budget_s=0.1,
    workers=2,
)


def history(accepted: list[float], done: list[float], **overrides: object) -> History:
    """Note i+1 accepted at T0 + accepted[i] s, completed at T0 + done[i] s (claimed 0.1 s
    before)."""
    notes, events, spans = [], [], []
    for i, (a, d) in enumerate(zip(accepted, done, strict=True)):
        note_id = i + 1
        at, end = T0 + timedelta(seconds=a), T0 + timedelta(seconds=d)
        claim = max(at, end - timedelta(seconds=0.1))
        content = f"note {note_id}"
        notes.append(
            LedgerNote(
                note_id,
                "completed",
                1,
                at,
                end,
                True,
                None,
                f"note-{note_id}-a0",
                trace_of(note_id),
                content,
                enrichment_for(content),
            )
        )
        job = f"note-{note_id}-a0"
        events += [
            LedgerEvent(note_id, None, "pending", 0, None, None, at, None),
            LedgerEvent(note_id, "pending", "queued", 0, None, job, at, None),
            LedgerEvent(
                note_id,
                "queued",
                "processing",
                1,
                "w",
                job,
                claim,
                None,
                None,
                claim + timedelta(seconds=5),
            ),
            LedgerEvent(note_id, "processing", "completed", 1, "w", job, end, None, "completed"),
        ]
        spans.append(
            SpanRecord(
                trace_of(note_id),
                f"{note_id:016x}",
                None,
                ATTEMPT_SPAN,
                "worker",
                ns(claim),
                ns(end),
                attributes={"note.id": note_id, "note.attempt": 1, "note.outcome": "completed"},
            )
        )
    h = History(
        notes=tuple(notes),
        events=tuple(events),
        observed_at=T0 + timedelta(seconds=max(done) + 1),
        spans=tuple(spans),
        rq=RqSnapshot(QUEUE),
        accepted={n.id: n.created_at for n in notes},
    )
    return replace(h, **overrides)  # type: ignore[arg-type]


def fifo(accepted: list[float], service: float, workers: int) -> list[float]:
    """Completion times of a FIFO pool of ``workers`` each taking ``service`` per note."""
    free = [0.0] * workers
    done = []
    for a in accepted:
        w = min(range(workers), key=lambda k: free[k])
        start = max(a, free[w])
        free[w] = start + service
        done.append(free[w])
    return done


ARRIVALS = [i / 20 for i in range(400)]  # 400 notes at 20/s: what 2 workers x 0.1 s can drain


def late_notes(result: CheckResult) -> set[int]:
    return {v.note_id for v in result.violations_of("terminal_within_deadline") if v.note_id}


def test_a_pipeline_draining_at_its_budget_is_valid() -> None:
    result = check(history(ARRIVALS, fifo(ARRIVALS, 0.1, 2)), CONFIG)
    assert result.verdict == "valid", result.reasons[:3]
    tightest = result.tightest_margin
    assert tightest is not None and tightest[1] > TTT - 1


def test_a_pipeline_draining_several_times_slower_than_its_budget_is_invalid() -> None:
    # 4x slower: the backlog it builds is not excused by its own drain rate
    result = check(history(ARRIVALS, fifo(ARRIVALS, 0.4, 2)), CONFIG)
    assert result.verdict == "invalid"
    late = late_notes(result)
    assert late and max(late) == 400, sorted(late)[:5]
    (v,) = [v for v in result.violations_of("terminal_within_deadline") if v.note_id == 400]
    assert "notes ahead" in v.message and "backlog" in v.message
    # the same slow run with a budget matching its speed passes: the budget is the promise
    assert check(
        history(ARRIVALS, fifo(ARRIVALS, 0.4, 2)), replace(CONFIG, service_budget_s=0.4)
    ).valid


def test_a_note_that_waits_a_minute_behind_a_one_second_backlog_is_invalid() -> None:
    accepted = [i / 10 for i in range(10)]  # 10 notes in 1 s: 0.5 s of work for 2 workers
    done = [a + 0.1 for a in accepted]
    done[4] = accepted[4] + 60.0  # note 5 waits a minute
    result = check(history(accepted, done), CONFIG)
    assert result.verdict == "invalid"
    assert late_notes(result) == {5}
    assert result.deadlines[5].backlog_s < 1.0
    assert result.tightest_margin is not None and result.tightest_margin[0] == 5
    assert result.tightest_margin[1] < -TTT


def test_a_slow_note_lowers_no_allowance_of_its_own() -> None:
    accepted = [0.0, 0.1, 0.2]
    result = check(history(accepted, [0.2, 0.3, 200.0]), CONFIG)
    assert late_notes(result) == {3}
    assert result.deadlines[3].ahead == 1  # note 2 only: note 1 was done at 0.2 s


def test_fault_windows_move_the_start_and_add_their_downtime() -> None:
    accepted = [0.0]
    done = [TTT + 12.0]  # too late without the fault
    assert not check(history(accepted, done), CONFIG).valid
    fault = FaultWindow(
        "proxy_down", "postgres", T0 + timedelta(seconds=2), T0 + timedelta(seconds=8)
    )
    result = check(history(accepted, done, faults=(fault,)), CONFIG)
    assert result.verdict == "valid", result.reasons
    d = result.deadlines[1]
    assert d.start == fault.end and d.downtime_s == 6.0
    assert d.deadline == fault.end + timedelta(seconds=TTT + 6.0)


def test_a_fault_after_the_note_was_terminal_excuses_nothing() -> None:
    late = FaultWindow("kill_worker", "w", T0 + timedelta(seconds=30), T0 + timedelta(seconds=31))
    result = check(history([0.0, 1.0], [0.5, 29.0], faults=(late,)), CONFIG)
    assert late_notes(result) == {2}
    assert result.deadlines[2].downtime_s == 0.0


def test_the_tightest_margin_lands_in_the_summary() -> None:
    result = check(history([0.0, 1.0], [0.5, 11.0]), CONFIG)
    data = result.to_dict()["tightest_deadline_margin"]
    assert data["note_id"] == 2
    assert data["margin_s"] == TTT - 10.0
