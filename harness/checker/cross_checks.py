"""Invariants across witnesses: the ledger against RQ's state, and against the traces.

Registered in :data:`harness.checker.invariants.INVARIANTS` with the inputs they need.
"""

from __future__ import annotations

from harness.checker.causes import overlapping_faults
from harness.checker.context import CheckContext, Violation
from harness.checker.history import COMPLETED, TERMINAL
from harness.checker.timeline import ns_to_datetime, span_attempt, span_outcome
from harness.spans import ATTEMPT_SPAN, Outcome

#: RQ job statuses that mean "may still run".
LIVE_JOB_STATUSES: frozenset[str] = frozenset({"queued", "started", "scheduled", "deferred"})


def redis_quiescent(ctx: CheckContext) -> list[Violation]:
    """After the run RQ holds no live work, and no terminal note's job looks live.

    Skipped (no violations) while some note is still in flight: the verdict is
    then unknown anyway.
    """
    rq = ctx.history.rq
    if rq is None or ctx.any_in_flight:
        return []
    out: list[Violation] = []
    places = {
        f"queue rq:queue:{rq.queue_name}": rq.queued_job_ids,
        f"intermediate list rq:queue:{rq.queue_name}:intermediate": rq.intermediate_job_ids,
        f"started registry rq:wip:{rq.queue_name}": rq.started_job_ids,
        f"scheduled registry rq:scheduled:{rq.queue_name}": rq.scheduled_job_ids,
    }
    for place, job_ids in places.items():
        for job_id in job_ids:
            owner = ctx.job_owners.get(job_id)
            out.append(
                ctx.violation(
                    "redis_quiescent", owner, f"job {job_id} left in {place}", job_id=job_id
                )
            )
    for job_id, status in sorted(rq.job_statuses.items()):
        if status not in LIVE_JOB_STATUSES:
            continue
        owner = ctx.job_owners.get(job_id)
        timeline = ctx.timelines.get(owner) if owner is not None else None
        note_status = timeline.note.status if timeline and timeline.note else None
        if owner is None or note_status in TERMINAL:
            whose = f"note {owner} is {note_status}" if owner is not None else "no known note"
            out.append(
                ctx.violation(
                    "redis_quiescent",
                    owner,
                    f"job {job_id} hash status is {status!r} but {whose}",
                    job_id=job_id,
                )
            )
    return out


def traces_agree(ctx: CheckContext) -> list[Violation]:
    """Attempt spans match ledger attempts; a span reports completion iff the ledger has it,
    and an attempt the ledger completed has exactly one attempt span, reporting ``completed``
    (or ``unknown`` when a fault cut its last write off).

    Spans with outcome ``skipped`` (a job that found nothing to claim) need not
    match a ledger attempt; spans without ``note.attempt`` (the claim itself
    failed) are ignored unless they report a completion.
    """
    return _spans_against_ledger(ctx) + _completions_against_spans(ctx)


def _spans_against_ledger(ctx: CheckContext) -> list[Violation]:
    """Every attempt span names an attempt the ledger has, and claims no completion the
    ledger does not record."""
    out: list[Violation] = []
    for span in ctx.history.spans:
        if span.name != ATTEMPT_SPAN:
            continue
        where = f"span {span.span_id} of trace {span.trace_id}"
        note_id, number, outcome = span.note_id, span_attempt(span), span_outcome(span)
        timeline = ctx.timelines.get(note_id) if note_id is not None else None
        if note_id is None or number is None:
            if outcome != COMPLETED:
                continue  # a job that never claimed (e.g. the database was unreachable)
            out.append(
                Violation(
                    "traces_agree",
                    note_id,
                    f"{where} lacks note.id or note.attempt",
                    (span.trace_id,),
                )
            )
            continue
        assert timeline is not None
        attempts = {a.number: a for a in timeline.attempts}
        if timeline.note is None:
            msg = f"{where} reports attempt {number} of a note absent from the ledger"
            out.append(ctx.violation("traces_agree", note_id, msg, attempt=number))
        elif number not in attempts and outcome != Outcome.SKIPPED:
            msg = f"{where} reports attempt {number}; the ledger has attempts {sorted(attempts)}"
            out.append(ctx.violation("traces_agree", note_id, msg, attempt=number))
        elif outcome == COMPLETED and attempts[number].outcome != COMPLETED:
            msg = (
                f"{where} reports completion by attempt {number}; the ledger ended it "
                f"with {attempts[number].outcome}"
            )
            out.append(ctx.violation("traces_agree", note_id, msg, attempt=number))
    return out


def _completions_against_spans(ctx: CheckContext) -> list[Violation]:
    """An attempt the ledger completed has one span, reporting ``completed`` (or
    ``unknown`` under a fault)."""
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        for a in t.attempts:
            if a.outcome != COMPLETED or not a.spans:
                continue  # no span at all is a gap in the witness (verdict unknown)
            if len(a.spans) > 1:
                ids = ", ".join(s.span_id for s in a.spans)
                msg = f"ledger completed attempt {a.number}; {len(a.spans)} attempt spans ({ids})"
                out.append(ctx.violation("traces_agree", t.note_id, msg, attempt=a.number))
                continue
            (span,) = a.spans
            outcome = span_outcome(span)
            if outcome == COMPLETED:
                continue
            # "unknown": the attempt's last write raised (the connection dropped around
            # COMMIT), so its span cannot know whether it took effect; only a fault explains it.
            start, end = ns_to_datetime(span.start_ns), ns_to_datetime(span.end_ns)
            if outcome == Outcome.UNKNOWN and overlapping_faults(ctx.history.faults, start, end):
                continue
            msg = f"ledger completed attempt {a.number}; its span reports {outcome!r}"
            out.append(ctx.violation("traces_agree", t.note_id, msg, attempt=a.number))
    return out
