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


def job_id_for(note_id: int, attempt: int) -> str:
    """The RQ job id of a note's job enqueued after ``attempt`` attempts: idempotent."""
    return f"note-{note_id}-a{attempt}"
