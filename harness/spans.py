"""The span record every harness part shares (collector, checker, report).

Attribute names the pipeline sets, so the checker can join traces to the ledger:

* span ``note.attempt`` (one per attempt, in the work-horse): ``note.id`` (int),
  ``note.attempt`` (int), ``rq.job.id``, ``rq.worker``, ``note.outcome``
  (``completed`` | ``retry`` | ``failed`` | ``fenced`` | ``skipped`` | ``unknown``),
  ``note.lease_until`` (the last lease it held, by the ledger's clock).
* span ``note.enqueue``: ``note.id``, ``rq.job.id``, ``note.attempt``.
* the API's ``POST /notes`` server span carries ``note.id`` once the note exists.
* harness fault spans are named ``fault.<kind>`` with ``fault.kind``, ``fault.target``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ATTEMPT_SPAN = "note.attempt"
ENQUEUE_SPAN = "note.enqueue"
ATTR_NOTE_ID = "note.id"
ATTR_ATTEMPT = "note.attempt"
ATTR_JOB_ID = "rq.job.id"
ATTR_WORKER = "rq.worker"
ATTR_OUTCOME = "note.outcome"
#: On an attempt span: the ``lease_until`` (ISO 8601, the ledger's clock) of the claim
#: or of the last heartbeat renewal that succeeded, i.e. until when the attempt held
#: its lease by its own evidence.
ATTR_LEASE_UNTIL = "note.lease_until"


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

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def note_id(self) -> int | None:
        value = self.attributes.get(ATTR_NOTE_ID)
        return int(value) if value is not None else None
