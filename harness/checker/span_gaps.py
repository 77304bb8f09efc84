"""Telemetry loss: ledger attempts no span witnessed.

A killed attempt loses its spans; that is telemetry loss, reported apart from
job loss and never an invariant violation. An attempt that ended *by itself*
(cause completed, error, timeout) lived to end its span, so a missing span there
is a gap in the trace witness: the verdict cannot be ``valid`` (it is ``unknown``),
unless a fault killed the worker process that was still holding the span for export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from harness.checker.history import FaultWindow
from harness.checker.timeline import Attempt, NoteTimeline
from notepipe.models import SELF_ENDED_CAUSES

#: Fault kinds that kill a worker process, and with it the spans it still buffers.
PROCESS_KILLING_FAULTS: frozenset[str] = frozenset(
    {"kill_worker", "term_worker", "kill_at_attempt", "scale_workers"}
)
#: How long a worker may hold an ended span before exporting it (batching, relay).
SPAN_EXPORT_LINGER = timedelta(seconds=2.0)


@dataclass(frozen=True)
class TelemetryLoss:
    note_id: int
    attempt: int
    job_id: str | None
    worker: str | None
    outcome: str | None  # how the ledger ended the attempt (None: still open)
    cause: str | None  # the structured cause of that end
    recovered: bool  # ended by recovery: a kill, where losing the span is expected
    trace_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trace_ids": list(self.trace_ids)}


def _loss(t: NoteTimeline, a: Attempt) -> TelemetryLoss:
    return TelemetryLoss(
        note_id=t.note_id,
        attempt=a.number,
        job_id=a.claim.job_id,
        worker=a.claim.worker,
        outcome=a.outcome,
        cause=a.cause,
        recovered=a.recovered,
        trace_ids=t.trace_ids,
    )


def telemetry_loss(timelines: Iterable[NoteTimeline]) -> list[TelemetryLoss]:
    """Every ledger attempt without a ``note.attempt`` span."""
    return [_loss(t, a) for t in timelines if t.note is not None for a in t.attempts if not a.spans]


def unwitnessed_attempts(
    timelines: Iterable[NoteTimeline], faults: Iterable[FaultWindow] = ()
) -> list[TelemetryLoss]:
    """Attempts that ended by themselves yet have no attempt span, with no process-killing
    fault to explain the loss: the trace witness is incomplete."""
    kills = [f for f in faults if f.kind in PROCESS_KILLING_FAULTS]
    out: list[TelemetryLoss] = []
    for t in timelines:
        if t.note is None:
            continue
        for a in t.attempts:
            if a.spans or a.end is None or a.cause not in SELF_ENDED_CAUSES:
                continue
            at = a.end.at
            if any(f.start - SPAN_EXPORT_LINGER <= at <= f.end + SPAN_EXPORT_LINGER for f in kills):
                continue
            out.append(_loss(t, a))
    return out
