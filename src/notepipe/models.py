"""The note lifecycle: statuses and the transitions the ledger allows."""

from __future__ import annotations

from enum import StrEnum


class NoteStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({NoteStatus.COMPLETED, NoteStatus.FAILED})


class EndCause(StrEnum):
    """Why an attempt ended: ``note_events.cause`` of the event that leaves ``processing``.

    Causes are data for the checker (it never reads error text). ``fenced`` is a
    span outcome only: a fenced attempt's write matches no row, so it has no event.
    """

    COMPLETED = "completed"  # the attempt completed the note
    ERROR = "error"  # a stage raised
    TIMEOUT = "timeout"  # RQ's job_timeout stopped the attempt
    NON_RETRYABLE = "non_retryable"  # failed on purpose, no retry (``fail_attempt(final=True)``)
    LEASE_EXPIRED = "lease_expired"  # the reconciler recovered it after its lease expired
    FENCED = "fenced"  # (span outcome) a newer attempt or the reconciler had taken the note


#: Causes of an attempt that ended by itself (its worker lived to record it).
SELF_ENDED_CAUSES = frozenset(
    {EndCause.COMPLETED, EndCause.ERROR, EndCause.TIMEOUT, EndCause.NON_RETRYABLE}
)

#: Every transition the ledger may record (from → to). ``None`` is creation.
ALLOWED_TRANSITIONS: frozenset[tuple[NoteStatus | None, NoteStatus]] = frozenset(
    {
        (None, NoteStatus.PENDING),
        (NoteStatus.PENDING, NoteStatus.QUEUED),
        (NoteStatus.PENDING, NoteStatus.PROCESSING),
        (NoteStatus.QUEUED, NoteStatus.PROCESSING),
        (NoteStatus.PROCESSING, NoteStatus.COMPLETED),
        (NoteStatus.PROCESSING, NoteStatus.QUEUED),
        (NoteStatus.PROCESSING, NoteStatus.FAILED),
    }
)
