"""The error root of the pipeline: every error says what failed and how to fix it."""

from __future__ import annotations


class NotepipeError(Exception):
    """Root of all notepipe errors."""


class ConfigurationError(NotepipeError):
    """A setting is missing or invalid."""


class NoteNotFound(NotepipeError):
    """No note with the given id exists in the ledger."""

    def __init__(self, note_id: int) -> None:
        super().__init__(f"note {note_id} does not exist")
        self.note_id = note_id


class AttemptFenced(NotepipeError):
    """An attempt tried to write after a newer attempt (or a terminal status) superseded it."""

    def __init__(self, note_id: int, attempt: int, detail: str) -> None:
        super().__init__(f"note {note_id} attempt {attempt} is fenced: {detail}")
        self.note_id = note_id
        self.attempt = attempt


class EnqueueFailed(NotepipeError):
    """The job could not be put on the Redis queue; the note stays in the ledger."""


class StageError(NotepipeError):
    """An enrichment stage could not be loaded or failed."""
