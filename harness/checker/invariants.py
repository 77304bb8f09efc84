"""The invariants: each a named function from a :class:`CheckContext` to violations.

Every violation names its note id and trace ids. :data:`INVARIANTS` lists them
in report order, with the inputs each needs (an invariant whose input is
missing is reported as skipped and makes the verdict at best unknown).
"""

from __future__ import annotations

from harness.checker.classify import NoteClass
from harness.checker.context import CheckContext, Invariant, Violation
from harness.checker.cross_checks import redis_quiescent, traces_agree
from harness.checker.history import COMPLETED, FAILED, PENDING, PROCESSING, QUEUED
from harness.checker.integrity import result_integrity
from harness.checker.recovery import (
    attempt_causes_expected,
    recovery_only_of_dead_attempts,
    recovery_within_lag,
)
from harness.spans import ATTR_OUTCOME, Outcome

#: The lifecycle graph: every (from_status, to_status) a ledger event may record.
ALLOWED_TRANSITIONS: frozenset[tuple[str | None, str]] = frozenset(
    {
        (None, PENDING),
        (None, QUEUED),
        (PENDING, QUEUED),
        (PENDING, PROCESSING),
        (QUEUED, PROCESSING),
        (PROCESSING, COMPLETED),
        (PROCESSING, QUEUED),
        (PROCESSING, FAILED),
    }
)


def terminal_within_deadline(ctx: CheckContext) -> list[Violation]:
    """Every accepted note is terminal by its oracle deadline (+ tolerance): see
    :mod:`harness.checker.oracle`."""
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        assert t.note is not None
        d = ctx.deadlines.get(t.note_id)
        if d is None:
            continue
        deadline = d.deadline
        limit = deadline + ctx.tolerance
        why = (
            f"start {d.start.isoformat()} + time_to_terminal {ctx.config.deadline_s:.1f}s "
            f"+ backlog {d.backlog_s:.1f}s ({d.ahead} notes ahead) "
            f"+ fault downtime {d.downtime_s:.1f}s"
        )
        terminal = t.terminal_event
        if terminal is not None and terminal.at > limit:
            late = (terminal.at - deadline).total_seconds()
            out.append(
                ctx.violation(
                    "terminal_within_deadline",
                    t.note_id,
                    f"reached {terminal.to_status} at {terminal.at.isoformat()}, "
                    f"{late:.3f}s after its deadline {deadline.isoformat()} ({why})",
                )
            )
        elif terminal is None and ctx.history.observed_at > limit:
            out.append(
                ctx.violation(
                    "terminal_within_deadline",
                    t.note_id,
                    f"still {t.note.status} at {ctx.history.observed_at.isoformat()}, "
                    f"past its deadline {deadline.isoformat()} ({why})",
                )
            )
    return out


def no_lost_notes(ctx: CheckContext) -> list[Violation]:
    """No note the client saw accepted is missing from the ledger or abandoned by it."""
    return [
        ctx.violation("no_lost_notes", c.note_id, c.reason)
        for c in ctx.classifications.values()
        if c.note_class is NoteClass.LOST
    ]


def attempts_within_budget(ctx: CheckContext) -> list[Violation]:
    """At most ``max_attempts`` (1 + retries) attempts per note."""
    out: list[Violation] = []
    budget = ctx.config.max_attempts
    for t in ctx.ledger_timelines():
        assert t.note is not None
        used = max([len(t.attempts), t.note.attempt, *(e.attempt for e in t.events)])
        if used > budget:
            out.append(
                ctx.violation(
                    "attempts_within_budget",
                    t.note_id,
                    f"{used} attempts, budget is {budget} (1 + {budget - 1} retries)",
                    attempt=used,
                )
            )
    return out


def failures_as_designed(ctx: CheckContext) -> list[Violation]:
    """A note fails only with its retry budget spent, every attempt ended by a cause its
    content asks for (or that a fault overlapping it explains)."""
    return [
        ctx.violation("failures_as_designed", c.note_id, c.reason)
        for c in ctx.classifications.values()
        if c.note_class is NoteClass.FAILED_UNEXPECTEDLY
    ]


def attempt_within_timeout(ctx: CheckContext) -> list[Violation]:
    """No attempt runs longer than ``job_timeout`` + tolerance.

    Duration is claim event to ending event; an attempt ended by recovery is
    measured by its span instead (skipped when it has none, or when the span ended
    ``fenced``: a zombie whose wall time includes its pause).
    """
    out: list[Violation] = []
    limit = ctx.config.job_timeout + ctx.config.tolerance_s
    for t in ctx.ledger_timelines():
        for a in t.attempts:
            if a.recovered:
                # A span that ended "fenced" belongs to a zombie (paused, partitioned)
                # that resumed after the takeover: its wall time includes the pause and
                # its writes were refused, so it does not count as an over-long attempt.
                live = [s for s in a.spans if s.attributes.get(ATTR_OUTCOME) != Outcome.FENCED]
                if not live:
                    continue
                duration, source = max(s.duration_s for s in live), "span"
            elif a.ledger_duration_s is not None:
                duration, source = a.ledger_duration_s, "ledger"
            else:
                continue
            if duration > limit:
                out.append(
                    ctx.violation(
                        "attempt_within_timeout",
                        t.note_id,
                        f"ran {duration:.3f}s ({source}), limit {ctx.config.job_timeout}s "
                        f"+ {ctx.config.tolerance_s}s tolerance",
                        attempt=a.number,
                        job_id=a.claim.job_id,
                    )
                )
    return out


def retry_gaps_respected(ctx: CheckContext) -> list[Violation]:
    """Attempt k+1 is claimed no sooner than ``retry_interval(k)`` after attempt k ended.

    Both events are stamped by the ledger's one clock, so the tolerance is
    ``retry_gap_tolerance_s`` (milliseconds), not the deadline's.
    """
    out: list[Violation] = []
    tolerance = ctx.config.retry_gap_tolerance_s
    for t in ctx.ledger_timelines():
        for prev, nxt in zip(t.attempts, t.attempts[1:], strict=False):
            if prev.end is None or prev.end.to_status != QUEUED:
                continue
            interval = ctx.config.retry_interval(prev.number)
            gap = (nxt.claim.at - prev.end.at).total_seconds()
            if gap < interval - tolerance:
                out.append(
                    ctx.violation(
                        "retry_gaps_respected",
                        t.note_id,
                        f"attempt {nxt.number} claimed {gap:.3f}s after attempt {prev.number} "
                        f"ended; retry {prev.number} must wait {interval}s "
                        f"(- {tolerance * 1000:.0f}ms tolerance)",
                        attempt=nxt.number,
                        job_id=nxt.claim.job_id,
                    )
                )
    return out


def single_completion(ctx: CheckContext) -> list[Violation]:
    """At most one effective completion; a completed note has its enrichment, no other does."""
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        assert t.note is not None
        completions = t.completions
        if len(completions) > 1:
            attempts = [e.attempt for e in completions]
            out.append(
                ctx.violation(
                    "single_completion",
                    t.note_id,
                    f"{len(completions)} completions in the ledger, by attempts {attempts}",
                )
            )
        if (t.note.status == COMPLETED) != t.note.enrichment_present:
            have = "has" if t.note.enrichment_present else "lacks"
            out.append(
                ctx.violation(
                    "single_completion",
                    t.note_id,
                    f"status {t.note.status} but {have} an enrichment",
                )
            )
    return out


def no_transition_after_terminal(ctx: CheckContext) -> list[Violation]:
    """Nothing leaves ``completed`` or ``failed``."""
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        terminal = t.terminal_event
        if terminal is None:
            continue
        for event in t.events[t.events.index(terminal) + 1 :]:
            out.append(
                ctx.violation(
                    "no_transition_after_terminal",
                    t.note_id,
                    f"{event.from_status} -> {event.to_status} at {event.at.isoformat()} "
                    f"after terminal {terminal.to_status} at {terminal.at.isoformat()}",
                    attempt=event.attempt,
                    job_id=event.job_id,
                )
            )
    return out


def no_overlapping_attempts(ctx: CheckContext) -> list[Violation]:
    """Attempt k+1 is claimed only after attempt k ended in the ledger."""
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        for prev, nxt in zip(t.attempts, t.attempts[1:], strict=False):
            if prev.end is None or nxt.claim.at < prev.end.at:
                out.append(
                    ctx.violation(
                        "no_overlapping_attempts",
                        t.note_id,
                        f"attempt {nxt.number} claimed at {nxt.claim.at.isoformat()} while "
                        f"attempt {prev.number} (claimed {prev.claim.at.isoformat()}) "
                        "had not ended",
                        attempt=nxt.number,
                        job_id=nxt.claim.job_id,
                    )
                )
    return out


def lifecycle_transitions(ctx: CheckContext) -> list[Violation]:
    """Events follow the lifecycle graph, chain from one to the next, and number attempts 1, 2, ...

    Events after a terminal status are left to :func:`no_transition_after_terminal`.
    """
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        assert t.note is not None
        terminal = t.terminal_event
        events = t.events if terminal is None else t.events[: t.events.index(terminal) + 1]
        state: str | None = None
        attempt = 0

        def bad(message: str, at_attempt: int | None, nid: int = t.note_id) -> None:
            out.append(ctx.violation("lifecycle_transitions", nid, message, attempt=at_attempt))

        for i, e in enumerate(events):
            edge = f"{e.from_status} -> {e.to_status}"
            if (e.from_status, e.to_status) not in ALLOWED_TRANSITIONS:
                bad(f"transition {edge} is not in the lifecycle graph", e.attempt)
            if i == 0 and e.from_status not in (None, PENDING):
                bad(f"first event {edge} does not start from pending", e.attempt)
            if i > 0 and e.from_status != state:
                bad(f"event {edge} follows an event that left the note {state}", e.attempt)
            if e.to_status == PROCESSING:
                if e.attempt != attempt + 1:
                    bad(f"claim numbered {e.attempt}, expected attempt {attempt + 1}", e.attempt)
                attempt = e.attempt
            elif e.from_status == PROCESSING and e.attempt != attempt:
                bad(f"{edge} recorded attempt {e.attempt} while attempt {attempt} ran", e.attempt)
            state = e.to_status
        final = events[-1].to_status if events else PENDING
        if terminal is None and t.note.status != final:
            bad(f"note row says {t.note.status} but its last event left it {final}", None)
        if terminal is None and t.note.attempt != attempt:
            bad(f"note row says attempt {t.note.attempt}, events claimed {attempt}", None)
    return out


_LEDGER = frozenset({"ledger"})

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "terminal_within_deadline",
        terminal_within_deadline,
        _LEDGER,
        "every accepted note terminal within its deadline",
    ),
    Invariant("no_lost_notes", no_lost_notes, _LEDGER, "no accepted note lost"),
    Invariant(
        "attempts_within_budget", attempts_within_budget, _LEDGER, "attempts <= max_attempts"
    ),
    Invariant(
        "failures_as_designed",
        failures_as_designed,
        _LEDGER,
        "failed only after max_attempts, each attempt ending with an expected cause",
    ),
    Invariant(
        "attempt_within_timeout",
        attempt_within_timeout,
        _LEDGER,
        "no attempt longer than job_timeout + tolerance",
    ),
    Invariant(
        "retry_gaps_respected",
        retry_gaps_respected,
        _LEDGER,
        "retry gaps >= configured interval (- milliseconds)",
    ),
    Invariant("single_completion", single_completion, _LEDGER, "at most one effective completion"),
    Invariant(
        "no_transition_after_terminal",
        no_transition_after_terminal,
        _LEDGER,
        "nothing leaves a terminal status",
    ),
    Invariant(
        "no_overlapping_attempts",
        no_overlapping_attempts,
        _LEDGER,
        "attempt k+1 claimed only after attempt k ended",
    ),
    Invariant(
        "lifecycle_transitions",
        lifecycle_transitions,
        _LEDGER,
        "transitions follow the lifecycle graph",
    ),
    Invariant(
        "attempt_causes_expected",
        attempt_causes_expected,
        _LEDGER,
        "every attempt ends with a recorded cause its content (or a fault) explains",
    ),
    Invariant(
        "recovery_only_of_dead_attempts",
        recovery_only_of_dead_attempts,
        _LEDGER,
        "a recovery only after lease_until + lease_grace of the lease the attempt held",
    ),
    Invariant(
        "recovery_within_lag",
        recovery_within_lag,
        _LEDGER,
        "a dead attempt recovered within recovery_lag_s of its lease running out",
    ),
    Invariant(
        "result_integrity",
        result_integrity,
        _LEDGER,
        "completed enrichment carries every stage and matches the checker's recomputation",
    ),
    Invariant(
        "redis_quiescent",
        redis_quiescent,
        frozenset({"ledger", "rq"}),
        "RQ holds no live work after the run",
    ),
    Invariant(
        "traces_agree",
        traces_agree,
        frozenset({"ledger", "spans"}),
        "attempt spans agree with the ledger",
    ),
)
