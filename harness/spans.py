"""The span record every harness part shares (collector, checker, report).

The names the pipeline writes are :mod:`notepipe.contracts.spans` (both sides import
them); the ``ATTR_*`` names below are that module's, under the names the harness has
always used. Harness fault spans are named ``fault.<kind>`` with ``fault.kind``,
``fault.target`` (written and read by the harness only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from notepipe.contracts import spans as contract
from notepipe.contracts.spans import ATTEMPT_SPAN, ENQUEUE_SPAN, Outcome

ATTR_NOTE_ID = contract.NOTE_ID
ATTR_ATTEMPT = contract.NOTE_ATTEMPT
ATTR_JOB_ID = contract.RQ_JOB_ID
ATTR_WORKER = contract.RQ_WORKER
ATTR_OUTCOME = contract.NOTE_OUTCOME
#: On an attempt span: the ``lease_until`` (ISO 8601, the ledger's clock) of the claim
#: or of the last heartbeat renewal that succeeded, i.e. until when the attempt held
#: its lease by its own evidence.
ATTR_LEASE_UNTIL = contract.NOTE_LEASE_UNTIL

__all__ = [
    "ATTEMPT_SPAN",
    "ATTR_ATTEMPT",
    "ATTR_JOB_ID",
    "ATTR_LEASE_UNTIL",
    "ATTR_NOTE_ID",
    "ATTR_OUTCOME",
    "ATTR_WORKER",
    "ENQUEUE_SPAN",
    "Outcome",
    "SpanRecord",
]


@dataclass(frozen=True)
class SpanRecord:
    """One finished span, decoded from OTLP. Times are Unix nanoseconds."""

    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    parent_span_id: str | None
    name: str
    service: str
    start_ns: int
    end_ns: int
    kind: str = "INTERNAL"  # SERVER | CLIENT | PRODUCER | CONSUMER | INTERNAL
    status: str = "UNSET"  # UNSET | OK | ERROR
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: tuple[dict[str, Any], ...] = ()
    scope: str = ""  # the instrumentation scope's name and version
    scope_version: str = ""

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def note_id(self) -> int | None:
        value = self.attributes.get(ATTR_NOTE_ID)
        return int(value) if value is not None else None
