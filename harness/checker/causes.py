"""Attempt ends judged by their structured causes (``note_events.cause``), never by error text.

An attempt's end is *expected* when its cause matches its transition and is one its
note's content asks for (:class:`~harness.checker.expectations.Expectation`), or when
it is a lease expiry or a timeout while a fault window overlapped the attempt (a
killed, paused or cut-off worker).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from harness.checker.expectations import Expectation
from harness.checker.history import COMPLETED, FAILED, QUEUED, CheckConfig, FaultWindow
from harness.checker.timeline import Attempt, NoteTimeline
from notepipe.models import EndCause

#: Causes a fault overlapping the attempt explains, whatever the content asked.
FAULT_CAUSES: frozenset[str] = frozenset({EndCause.LEASE_EXPIRED, EndCause.TIMEOUT})
_KNOWN: frozenset[str] = frozenset(c.value for c in EndCause) - {EndCause.FENCED}


def overlapping_faults(
    faults: Iterable[FaultWindow], start: datetime, end: datetime
) -> list[FaultWindow]:
    return [f for f in faults if f.start <= end and f.end >= start]


def expectation(timeline: NoteTimeline) -> Expectation:
    return Expectation.of(timeline.note.content if timeline.note is not None else None)


def end_problem(
    timeline: NoteTimeline,
    attempt: Attempt,
    config: CheckConfig,
    faults: Iterable[FaultWindow],
) -> str | None:
    """Why ``attempt``'s end is not one a correct pipeline records, or ``None`` if it is."""
    end = attempt.end
    if end is None:
        return None
    cause = end.cause
    if cause is None:
        return f"ended ({end.to_status}) without a recorded cause"
    if cause not in _KNOWN:
        return f"ended ({end.to_status}) with an unknown cause {cause!r}"
    if (cause == EndCause.COMPLETED) != (end.to_status == COMPLETED):
        return f"cause {cause!r} recorded on a transition to {end.to_status}"
    if end.to_status not in (COMPLETED, QUEUED, FAILED):
        return f"ended by a transition to {end.to_status}"
    expected = expectation(timeline).ends(attempt.number, config.job_timeout)
    if cause in expected:
        return None
    if cause in FAULT_CAUSES and overlapping_faults(faults, attempt.claim.at, end.at):
        return None
    asked = ", ".join(sorted(expected))
    return f"ended with cause {cause!r}; its content asks attempt {attempt.number} for {asked}"
