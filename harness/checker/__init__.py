"""A Jepsen-style checker: one run's history in, a valid / invalid / unknown verdict out.

``history`` (input model) -> ``readers`` (ledger, raw RQ) -> ``timeline`` (per-note
derivation) -> ``classify`` (what became of each note) -> ``invariants`` ->
``verdict`` (``check``).
"""

from __future__ import annotations

from harness.checker.classify import Classification, NoteClass
from harness.checker.context import Violation
from harness.checker.history import (
    CheckConfig,
    FaultWindow,
    History,
    LedgerEvent,
    LedgerNote,
    RqSnapshot,
)
from harness.checker.readers import read_ledger, read_rq_snapshot
from harness.checker.span_gaps import TelemetryLoss
from harness.checker.verdict import CheckResult, check

__all__ = [
    "CheckConfig",
    "CheckResult",
    "Classification",
    "FaultWindow",
    "History",
    "LedgerEvent",
    "LedgerNote",
    "NoteClass",
    "RqSnapshot",
    "TelemetryLoss",
    "Violation",
    "check",
    "read_ledger",
    "read_rq_snapshot",
]
