"""The error root of the pipeline: every error says what failed and how to fix it."""

from __future__ import annotations


class NotepipeError(Exception):
    """Root of all notepipe errors."""


class ConfigurationError(NotepipeError):
    """A setting is missing or invalid."""


class EnqueueFailed(NotepipeError):
    """The job could not be put on the Redis queue; the note stays in the ledger."""


class StageError(NotepipeError):
    """An enrichment stage could not be loaded or failed."""
