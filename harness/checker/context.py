"""What every invariant reads, and what it returns: :class:`CheckContext`, :class:`Violation`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from harness.checker.classify import Classification, NoteClass
from harness.checker.history import CheckConfig, History
from harness.checker.oracle import NoteDeadline
from harness.checker.timeline import NoteTimeline


@dataclass(frozen=True)
class Violation:
    """One broken invariant, naming the note, its traces and the evidence."""

    invariant: str
    note_id: int | None
    message: str
    trace_ids: tuple[str, ...] = ()
    attempt: int | None = None
    job_id: str | None = None

    def __str__(self) -> str:
        where = f"note {self.note_id}" if self.note_id is not None else "run"
        if self.attempt is not None:
            where += f" attempt {self.attempt}"
        traces = f" [trace {', '.join(self.trace_ids)}]" if self.trace_ids else ""
        return f"{self.invariant}: {where}: {self.message}{traces}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trace_ids": list(self.trace_ids)}


@dataclass(frozen=True)
class CheckContext:
    history: History
    config: CheckConfig
    timelines: Mapping[int, NoteTimeline]
    classifications: Mapping[int, Classification]
    deadlines: Mapping[int, NoteDeadline]
    job_owners: Mapping[str, int]

    @property
    def tolerance(self) -> timedelta:
        return timedelta(seconds=self.config.tolerance_s)

    @property
    def any_in_flight(self) -> bool:
        return any(c.note_class is NoteClass.IN_FLIGHT for c in self.classifications.values())

    def ledger_timelines(self) -> list[NoteTimeline]:
        return [t for t in self.timelines.values() if t.note is not None]

    def violation(
        self,
        invariant: str,
        note_id: int | None,
        message: str,
        *,
        attempt: int | None = None,
        job_id: str | None = None,
    ) -> Violation:
        timeline = self.timelines.get(note_id) if note_id is not None else None
        trace_ids = timeline.trace_ids if timeline is not None else ()
        return Violation(invariant, note_id, message, trace_ids, attempt, job_id)


CheckFn = Callable[[CheckContext], list[Violation]]


@dataclass(frozen=True)
class Invariant:
    """A named check; ``needs`` lists the inputs (``ledger``, ``rq``, ``spans``) it reads."""

    name: str
    check: CheckFn
    needs: frozenset[str]
    description: str
