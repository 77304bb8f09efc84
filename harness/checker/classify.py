"""Per-note classification, Jepsen style: what became of each note?

Classes, checked in this order:

* ``lost`` — accepted by the client (or seen in traces) but absent from the
  ledger; or non-terminal past its deadline with no live job in RQ.
* ``duplicated`` — more than one ``-> completed`` event, or a completion after a
  terminal status.
* ``completed`` / ``recovered`` — completed; ``recovered`` when some attempt was
  ended by recovery (lease expiry, abandonment, a killed worker) and retried.
* ``failed_as_designed`` — failed after exactly ``max_attempts`` attempts, every
  one ended with a cause its content asks for (the chaos stage's poison → error,
  slow → timeout, exit → lease_expired) or explained by a fault window overlapping
  it; ``failed_unexpectedly`` otherwise (classified from causes, never error text).
* ``stuck`` — non-terminal past its deadline, with a job still live in RQ.
* ``in_flight`` — non-terminal, deadline not yet reached when the history was
  read: the history is incomplete (verdict unknown), not wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from harness.checker.causes import end_problem
from harness.checker.history import (
    COMPLETED,
    FAILED,
    TERMINAL,
    CheckConfig,
    FaultWindow,
    LedgerNote,
    RqSnapshot,
)
from harness.checker.timeline import NoteTimeline


class NoteClass(StrEnum):
    COMPLETED = "completed"
    RECOVERED = "recovered"
    FAILED_AS_DESIGNED = "failed_as_designed"
    FAILED_UNEXPECTEDLY = "failed_unexpectedly"
    LOST = "lost"
    DUPLICATED = "duplicated"
    STUCK = "stuck"
    IN_FLIGHT = "in_flight"


#: Classes that are a correct end for a note.
OK_CLASSES: frozenset[NoteClass] = frozenset(
    {NoteClass.COMPLETED, NoteClass.RECOVERED, NoteClass.FAILED_AS_DESIGNED}
)


@dataclass(frozen=True)
class Classification:
    note_id: int
    note_class: NoteClass
    reason: str
    trace_ids: tuple[str, ...]
    attempts: int
    status: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "note_id": self.note_id,
            "class": self.note_class.value,
            "reason": self.reason,
            "trace_ids": list(self.trace_ids),
            "attempts": self.attempts,
            "status": self.status,
        }


def live_job_ids(rq: RqSnapshot | None) -> frozenset[str]:
    """Jobs RQ may still run: queued, being moved, started or scheduled."""
    if rq is None:
        return frozenset()
    return frozenset(
        rq.queued_job_ids + rq.intermediate_job_ids + rq.started_job_ids + rq.scheduled_job_ids
    )


def classify_note(
    timeline: NoteTimeline,
    config: CheckConfig,
    *,
    observed_at: datetime,
    deadline: datetime | None,
    rq: RqSnapshot | None,
    faults: Sequence[FaultWindow] = (),
) -> Classification:
    """Classify one note; the reason names the evidence."""
    note = timeline.note
    if note is None:
        verdict = _absent(timeline)
    elif (duplicated := _duplicated(timeline)) is not None:
        verdict = duplicated
    elif note.status == COMPLETED:
        verdict = _completed(timeline, note)
    elif note.status == FAILED:
        verdict = _failed(timeline, config, faults)
    else:
        verdict = _unfinished(timeline, note, config, observed_at, deadline, rq)
    return Classification(
        timeline.note_id,
        verdict[0],
        verdict[1],
        timeline.trace_ids,
        len(timeline.attempts),
        note.status if note is not None else None,
    )


Verdict = tuple[NoteClass, str]


def _absent(timeline: NoteTimeline) -> Verdict:
    if timeline.accepted_at is not None:
        return (
            NoteClass.LOST,
            f"accepted by the client at {timeline.accepted_at.isoformat()} "
            "but absent from the ledger",
        )
    return NoteClass.LOST, "seen in traces but absent from the ledger"


def _duplicated(timeline: NoteTimeline) -> Verdict | None:
    completions = timeline.completions
    if len(completions) > 1:
        by = ", ".join(str(e.attempt) for e in completions)
        return NoteClass.DUPLICATED, f"{len(completions)} completions (attempts {by})"
    terminal = timeline.terminal_event
    if terminal is not None:
        later = timeline.events[timeline.events.index(terminal) + 1 :]
        if any(e.to_status == COMPLETED for e in later):
            return NoteClass.DUPLICATED, f"completed after terminal status {terminal.to_status!r}"
    return None


def _completed(timeline: NoteTimeline, note: LedgerNote) -> Verdict:
    recovered = [a.number for a in timeline.attempts if a.recovered]
    if recovered:
        return (
            NoteClass.RECOVERED,
            f"completed by attempt {note.attempt} after recovery of attempt(s) {recovered}",
        )
    return NoteClass.COMPLETED, f"completed by attempt {note.attempt}"


def _failed(timeline: NoteTimeline, config: CheckConfig, faults: Sequence[FaultWindow]) -> Verdict:
    attempts = len(timeline.attempts)
    causes = [a.cause for a in timeline.attempts]
    if attempts < config.max_attempts:
        return (
            NoteClass.FAILED_UNEXPECTEDLY,
            f"failed after {attempts} attempt(s) of a budget of {config.max_attempts} "
            f"(causes {causes})",
        )
    problems = [
        f"attempt {a.number} {problem}"
        for a in timeline.attempts
        if (problem := end_problem(timeline, a, config, faults)) is not None
    ]
    if problems:
        return (
            NoteClass.FAILED_UNEXPECTEDLY,
            f"failed after {attempts} attempts, not as designed: {'; '.join(problems)}",
        )
    return (
        NoteClass.FAILED_AS_DESIGNED,
        f"failed after {attempts} of {config.max_attempts} attempts, each ended as "
        f"designed (causes {causes})",
    )


def _unfinished(
    timeline: NoteTimeline,
    note: LedgerNote,
    config: CheckConfig,
    observed_at: datetime,
    deadline: datetime | None,
    rq: RqSnapshot | None,
) -> Verdict:
    assert note.status not in TERMINAL
    if deadline is None:
        return NoteClass.IN_FLIGHT, f"{note.status}, with no acceptance time to judge by"
    if observed_at <= deadline + timedelta(seconds=config.tolerance_s):
        return (
            NoteClass.IN_FLIGHT,
            f"{note.status} when observed at {observed_at.isoformat()}, "
            f"before its deadline {deadline.isoformat()}",
        )
    if rq is None:
        return (
            NoteClass.STUCK,
            f"still {note.status} past its deadline {deadline.isoformat()} "
            "(no RQ snapshot: whether a job is live is unknown)",
        )
    live = sorted(timeline.job_ids & live_job_ids(rq))
    if live:
        return (
            NoteClass.STUCK,
            f"still {note.status} past its deadline {deadline.isoformat()}; live job(s) {live}",
        )
    return (
        NoteClass.LOST,
        f"still {note.status} past its deadline {deadline.isoformat()} with no live job in RQ",
    )
