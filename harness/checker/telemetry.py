"""Telemetry loss: ledger attempts no span witnessed.

A killed attempt loses its spans; that is telemetry loss, reported apart from
job loss and never an invariant violation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.checker.timeline import NoteTimeline


@dataclass(frozen=True)
class TelemetryLoss:
    note_id: int
    attempt: int
    job_id: str | None
    worker: str | None
    outcome: str | None  # how the ledger ended the attempt (None: still open)
    recovered: bool  # ended by recovery: a kill, where losing the span is expected
    trace_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "note_id": self.note_id,
            "attempt": self.attempt,
            "job_id": self.job_id,
            "worker": self.worker,
            "outcome": self.outcome,
            "recovered": self.recovered,
            "trace_ids": list(self.trace_ids),
        }


def telemetry_loss(timelines: Iterable[NoteTimeline]) -> list[TelemetryLoss]:
    """Every ledger attempt without a ``note.attempt`` span."""
    return [
        TelemetryLoss(
            note_id=t.note_id,
            attempt=a.number,
            job_id=a.claim.job_id,
            worker=a.claim.worker,
            outcome=a.outcome,
            recovered=a.recovered,
            trace_ids=t.trace_ids,
        )
        for t in timelines
        if t.note is not None
        for a in t.attempts
        if not a.spans
    ]
