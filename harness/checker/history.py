"""The checker's input: one run's history from its independent witnesses.

Witnesses: the PostgreSQL ledger (``notes``, ``note_events``), a raw RQ snapshot
taken after the run, and the spans the collector stored. Plus what the harness
itself knows: when the client saw each note accepted, and the fault windows.

Everything here is plain frozen data; the readers live in
:mod:`harness.checker.readers`. Times are timezone-aware ``datetime``\\ s (the
ledger's ``TIMESTAMPTZ``); span times stay Unix nanoseconds as in
:class:`~harness.spans.SpanRecord`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from harness.spans import SpanRecord

if TYPE_CHECKING:
    from notepipe.settings import Settings

PENDING = "pending"
QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
TERMINAL: frozenset[str] = frozenset({COMPLETED, FAILED})

#: Substrings (lower-cased) of an attempt's ending error that mean "recovered after
#: a kill / lease expiry / abandonment" rather than "the attempt itself failed".
DEFAULT_RECOVERY_MARKERS: tuple[str, ...] = (
    "lease",
    "abandon",
    "terminated",
    "killed",
    "reconcil",
    "intermediate queue",
)
#: Substrings (lower-cased) of a final error that state a non-retryable reason.
DEFAULT_NON_RETRYABLE_MARKERS: tuple[str, ...] = (
    "non-retryable",
    "non_retryable",
    "nonretryable",
    "not retryable",
    "permanent",
    "poison",
)


@dataclass(frozen=True)
class LedgerNote:
    """One row of ``notes`` (only what the checker needs)."""

    id: int
    status: str
    attempt: int
    created_at: datetime
    completed_at: datetime | None
    enrichment_present: bool
    last_error: str | None
    job_id: str | None = None
    trace_id: str | None = None  # from ``trace_context``'s traceparent, when present


@dataclass(frozen=True)
class LedgerEvent:
    """One row of ``note_events``. Within a note, history order is ledger (id) order."""

    note_id: int
    from_status: str | None
    to_status: str
    attempt: int
    worker: str | None
    job_id: str | None
    at: datetime
    error: str | None


@dataclass(frozen=True)
class RqSnapshot:
    """Raw RQ state for one queue, read key by key (no registry cleanup side effects).

    ``started_job_ids`` are job ids parsed from the ``rq:wip:<q>`` members
    (``<job_id>:<execution_id>``); ``started_entries`` keeps the raw members and
    their scores (expiry timestamps).
    """

    queue_name: str
    queued_job_ids: tuple[str, ...] = ()
    intermediate_job_ids: tuple[str, ...] = ()
    started_job_ids: tuple[str, ...] = ()
    started_entries: tuple[tuple[str, float], ...] = ()
    scheduled_job_ids: tuple[str, ...] = ()
    failed_job_ids: tuple[str, ...] = ()
    finished_job_ids: tuple[str, ...] = ()
    job_statuses: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def queue_length(self) -> int:
        return len(self.queued_job_ids)


@dataclass(frozen=True)
class FaultWindow:
    """One injected fault, from inject to heal; ``effect`` says what it hit, ``missed`` why
    it cannot count as having bitten (see :mod:`harness.faults.effect`)."""

    kind: str
    target: str
    start: datetime
    end: datetime
    effect: str = field(default="", compare=False)
    missed: str | None = field(default=None, compare=False)
    evidence: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CheckConfig:
    """What the run promised: budgets, intervals, timeouts and the terminal deadline.

    ``deadline_s`` is the computed worst-case time from acceptance (or from
    ``healed_at``, whichever is later) to a terminal status.
    """

    max_attempts: int
    retry_intervals: tuple[float, ...]
    job_timeout: float
    deadline_s: float
    tolerance_s: float = 1.0
    healed_at: datetime | None = None
    recovery_markers: tuple[str, ...] = DEFAULT_RECOVERY_MARKERS
    non_retryable_markers: tuple[str, ...] = DEFAULT_NON_RETRYABLE_MARKERS
    #: Per note: seconds it may wait behind the queue's backlog on top of ``deadline_s``
    #: (``deadline_s`` assumes a free worker; see ``harness.run.backlog_allowances``).
    backlog_s: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.retry_intervals:
            raise ValueError("retry_intervals must name at least one interval")

    def retry_interval(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based); the last interval repeats."""
        index = min(max(retry_number, 1), len(self.retry_intervals)) - 1
        return self.retry_intervals[index]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        deadline_s: float | None = None,
        tolerance_s: float = 1.0,
        healed_at: datetime | None = None,
    ) -> CheckConfig:
        """The run's promises from its settings; the deadline defaults to
        :func:`notepipe.deadlines.time_to_terminal`."""
        if deadline_s is None:
            from notepipe.deadlines import time_to_terminal

            deadline_s = time_to_terminal(settings)
        return cls(
            max_attempts=settings.max_attempts,
            retry_intervals=tuple(settings.retry_intervals),
            job_timeout=settings.job_timeout,
            deadline_s=deadline_s,
            tolerance_s=tolerance_s,
            healed_at=healed_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "retry_intervals": list(self.retry_intervals),
            "job_timeout": self.job_timeout,
            "deadline_s": self.deadline_s,
            "tolerance_s": self.tolerance_s,
            "healed_at": self.healed_at.isoformat() if self.healed_at else None,
        }


@dataclass(frozen=True)
class History:
    """One run, as the checker sees it.

    ``observed_at`` is when the ledger and RQ were read: a non-terminal note whose
    deadline is still in the future then is *in flight* and makes the verdict
    unknown rather than invalid. ``input_errors`` names inputs that could not be
    read (keys ``"ledger"``, ``"rq"``, ``"spans"``), with why.
    """

    notes: tuple[LedgerNote, ...]
    events: tuple[LedgerEvent, ...]
    observed_at: datetime
    spans: tuple[SpanRecord, ...] = ()
    rq: RqSnapshot | None = None
    faults: tuple[FaultWindow, ...] = ()
    accepted: Mapping[int, datetime] = field(default_factory=dict)
    input_errors: Mapping[str, str] = field(default_factory=dict)
