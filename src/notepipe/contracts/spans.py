"""The tracing boundary: span names, attribute keys and outcomes.

OpenTelemetry semantic-convention style: every name that crosses a process boundary is
a constant here, dotted and namespaced (``note.*``, ``rq.*``, ``reconcile.*``), imported
by the writer (the pipeline) and the readers (the harness's collector, checker and
report) alike.

* span :data:`ATTEMPT_SPAN` (one per attempt, in the work-horse, kind CONSUMER):
  :data:`NOTE_ID` (int), :data:`NOTE_ATTEMPT` (int), :data:`RQ_JOB_ID`,
  :data:`RQ_WORKER`, :data:`NOTE_OUTCOME` (an :class:`Outcome`),
  :data:`NOTE_LEASE_UNTIL` (the last lease it held, ISO 8601 by the ledger's clock);
  when skipped :data:`NOTE_SKIP_REASON`, when fenced :data:`NOTE_FENCED_BY_HEARTBEAT`.
* span :data:`ENQUEUE_SPAN` (kind PRODUCER): :data:`NOTE_ID`, :data:`NOTE_ATTEMPT`
  (attempts before it), :data:`RQ_JOB_ID`; :data:`RQ_ENQUEUE_DUPLICATE` when the job
  was already live.
* the API's ``POST /notes`` server span carries :data:`NOTE_ID` once the note exists.
* span :data:`RECOVER_SPAN` (the reconciler, in the note's own trace): an attempt
  whose lease expired is over: :data:`NOTE_ID`, :data:`NOTE_ATTEMPT` (the lost
  attempt), :data:`RQ_WORKER` (its worker), :data:`NOTE_OUTCOME`
  (:data:`LEASE_EXPIRED`), :data:`NOTE_STATUS` (where the note went: queued or failed).
* span :data:`RECONCILE_SPAN`: :data:`RECONCILE_RECOVERED`,
  :data:`RECONCILE_ENQUEUED`, :data:`RECONCILE_FAILED` (counts).
"""

from __future__ import annotations

from enum import StrEnum

ATTEMPT_SPAN = "note.attempt"
ENQUEUE_SPAN = "note.enqueue"
RECONCILE_SPAN = "reconcile.pass"
RECOVER_SPAN = "note.recover"

NOTE_ID = "note.id"
NOTE_ATTEMPT = "note.attempt"
NOTE_OUTCOME = "note.outcome"
NOTE_STATUS = "note.status"
#: :data:`NOTE_OUTCOME` of a :data:`RECOVER_SPAN`: the attempt's worker stopped renewing it.
LEASE_EXPIRED = "lease_expired"
NOTE_LEASE_UNTIL = "note.lease_until"
NOTE_SKIP_REASON = "note.skip_reason"
NOTE_FENCED_BY_HEARTBEAT = "note.fenced_by_heartbeat"
RQ_JOB_ID = "rq.job.id"
RQ_WORKER = "rq.worker"
RQ_ENQUEUE_DUPLICATE = "rq.enqueue.duplicate"
RECONCILE_RECOVERED = "reconcile.recovered"
RECONCILE_ENQUEUED = "reconcile.enqueued"
RECONCILE_FAILED = "reconcile.failed"


class Outcome(StrEnum):
    """How an attempt ended, by its own account (:data:`NOTE_OUTCOME`)."""

    COMPLETED = "completed"
    RETRY = "retry"  # failed; the ledger queued the note again
    FAILED = "failed"  # failed; the retry budget is spent
    FENCED = "fenced"  # a newer attempt owns the note: this one's writes were refused
    SKIPPED = "skipped"  # the claim was refused (see NOTE_SKIP_REASON)
    UNKNOWN = "unknown"  # failed outside the stages: whether its last write committed is unknown
