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

#: Scheduling slack on a recovery, on top of one reconcile interval (a loaded machine).
RECOVERY_SLACK_S = 3.0


def stage_name(path: str) -> str:
    """The enrichment key of a stage path ``module:function`` (its function's name)."""
    return path.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


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
    content: str | None = None
    enrichment: Mapping[str, Any] | None = None


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
    cause: str | None = None  # why the attempt ended (events leaving ``processing``)
    lease_until: datetime | None = None  # a claim's lease; the lease a recovery saw


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
    """What the run promised, fixed before it: budgets, intervals, timeouts, deadlines.

    ``deadline_s`` is :func:`notepipe.deadlines.time_to_terminal`: the worst case
    for one note on a free worker. The oracle (:mod:`harness.checker.oracle`) adds
    a backlog allowance from ``service_budget_s`` (seconds one worker may spend
    per note) and ``workers``, and the fault downtime.
    """

    max_attempts: int
    retry_intervals: tuple[float, ...]
    job_timeout: float
    deadline_s: float
    #: Slack on deadlines and attempt durations (process scheduling, span clocks).
    tolerance_s: float = 1.0
    #: Slack on retry gaps: both ends are stamped by the one PostgreSQL clock.
    retry_gap_tolerance_s: float = 0.005
    #: Slack between a span's time (the worker host's clock) and the ledger's (the
    #: database host's): one kernel clock on the local and testcontainers backends, so
    #: this covers only the span's own bookkeeping. Raise it for a database on another
    #: host whose clock may differ.
    span_clock_tolerance_s: float = 0.25
    service_budget_s: float = 0.0
    workers: int = 1
    #: A recovery must wait this long past the lease it saw (``Settings.lease_grace``).
    lease_grace: float = 0.0
    #: Heartbeat period (``Settings.effective_heartbeat_interval``): how soon a live
    #: attempt renews its lease once a fault is over.
    heartbeat_interval: float = 0.0
    #: ... and happen within this long past ``lease_until + lease_grace`` unless a fault
    #: overlapped (one reconcile pass, plus scheduling slack).
    recovery_lag_s: float = 30.0
    #: Enrichment keys a completed note must carry (the configured stages' names);
    #: ``None``: not checked.
    expected_stages: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.retry_intervals:
            raise ValueError("retry_intervals must name at least one interval")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.service_budget_s < 0:
            raise ValueError(f"service_budget_s must be >= 0, got {self.service_budget_s}")

    def retry_interval(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based); the last interval repeats."""
        index = min(max(retry_number, 1), len(self.retry_intervals)) - 1
        return self.retry_intervals[index]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        workers: int = 1,
        service_budget_s: float = 0.0,
        tolerance_s: float = 1.0,
    ) -> CheckConfig:
        """The run's promises from its settings; the deadline is
        :func:`notepipe.deadlines.time_to_terminal`."""
        from notepipe.deadlines import time_to_terminal

        return cls(
            max_attempts=settings.max_attempts,
            retry_intervals=tuple(settings.retry_intervals),
            job_timeout=settings.job_timeout,
            deadline_s=time_to_terminal(settings),
            tolerance_s=tolerance_s,
            service_budget_s=service_budget_s,
            workers=workers,
            lease_grace=settings.lease_grace,
            heartbeat_interval=settings.effective_heartbeat_interval,
            recovery_lag_s=settings.reconcile_interval + RECOVERY_SLACK_S,
            expected_stages=tuple(stage_name(path) for path in settings.stages),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "retry_intervals": list(self.retry_intervals),
            "job_timeout": self.job_timeout,
            "deadline_s": self.deadline_s,
            "tolerance_s": self.tolerance_s,
            "retry_gap_tolerance_s": self.retry_gap_tolerance_s,
            "span_clock_tolerance_s": self.span_clock_tolerance_s,
            "service_budget_s": self.service_budget_s,
            "workers": self.workers,
            "lease_grace": self.lease_grace,
            "heartbeat_interval": self.heartbeat_interval,
            "recovery_lag_s": self.recovery_lag_s,
            "expected_stages": list(self.expected_stages) if self.expected_stages else None,
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
