"""The RQ job: ``process_note_job(note_id)`` runs one fenced attempt at a note."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

from opentelemetry import trace
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from notepipe.contracts import spans
from notepipe.contracts.spans import Outcome
from notepipe.models import EndCause, NoteStatus
from notepipe.queue.heartbeat import LeaseHeartbeat
from notepipe.queue.lent_connection import ConnectionLender, current_lender
from notepipe.queue.runtime import get_runtime
from notepipe.redact import redact_text
from notepipe.stages import enrich
from notepipe.store import ledger
from notepipe.store.db import connect
from notepipe.store.rows import Conn
from notepipe.telemetry import context_from, flush_telemetry

log = logging.getLogger(__name__)
tracer = trace.get_tracer("notepipe.job")


def process_note_job(note_id: int) -> dict[str, Any]:
    """Claim the note (lease), run the stages, complete it — all fenced by attempt.

    On an exception the attempt's failure is recorded (``queued`` for a retry, or
    ``failed`` once the retry budget is spent) and the exception re-raised so RQ
    applies its ``Retry``. Returns a small JSON result describing the outcome.
    """
    job = get_current_job()
    job_id = job.id if job is not None else f"direct-{note_id}"
    meta: dict[str, Any] = dict(job.meta) if job is not None else {}
    worker = (
        job.worker_name if job is not None else None
    ) or f"{socket.gethostname()}.{os.getpid()}"

    span_attrs: dict[str, str | int] = {
        spans.NOTE_ID: note_id,
        spans.RQ_JOB_ID: job_id,
        spans.RQ_WORKER: worker,
    }
    try:
        with tracer.start_as_current_span(
            spans.ATTEMPT_SPAN,
            context=context_from(meta),
            kind=trace.SpanKind.CONSUMER,
            attributes=span_attrs,
            record_exception=False,
        ) as span:
            try:
                return _run_attempt(span, job, note_id, job_id, worker)
            except BaseException as exc:
                # Failing outside the stages (the ledger or Redis dropped mid-write), the
                # attempt cannot know whether its last write committed: the lease decides.
                if not getattr(span, "attributes", {}).get(spans.NOTE_OUTCOME):
                    span.set_attribute(spans.NOTE_OUTCOME, Outcome.UNKNOWN)
                    span.record_exception(exc)
                raise
    finally:
        flush_telemetry()  # a forked work-horse exits with os._exit: export now


def _run_attempt(
    span: trace.Span, job: Any, note_id: int, job_id: str, worker: str
) -> dict[str, Any]:
    runtime = get_runtime()
    settings = runtime.settings
    lender = current_lender()
    lent = lender.borrow() if lender is not None else None
    heartbeats: list[LeaseHeartbeat] = []
    with contextlib.ExitStack() as connections:
        conn = lent if lent is not None else connections.enter_context(connect(settings))
        if lent is not None and lender is not None:
            # Given back at the very end, once the heartbeat (below) no longer uses it.
            connections.callback(_give_back, lender, lent, heartbeats)
        claimed = ledger.claim(
            conn,
            note_id,
            worker=worker,
            job_id=job_id,
            lease_ttl=settings.lease_ttl,
            max_attempts=settings.max_attempts,
            retry_intervals=settings.retry_intervals,
        )
        if isinstance(claimed, ledger.ClaimRefused):
            span.set_attribute(spans.NOTE_OUTCOME, Outcome.SKIPPED)
            span.set_attribute(spans.NOTE_SKIP_REASON, claimed.reason)
            if claimed.attempt is not None:
                span.set_attribute(spans.NOTE_ATTEMPT, claimed.attempt)
            log.info("note %s not claimed by job %s: %s", note_id, job_id, claimed.reason)
            return {"outcome": Outcome.SKIPPED, "reason": claimed.reason}

        attempt = claimed.attempt
        span.set_attribute(spans.NOTE_ATTEMPT, attempt)
        if claimed.lease_until is not None:
            span.set_attribute(spans.NOTE_LEASE_UNTIL, claimed.lease_until.isoformat())
        with LeaseHeartbeat(settings, note_id, attempt, shared=conn) as heartbeat:
            heartbeats.append(heartbeat)
            try:
                enrichment = enrich(
                    runtime.stages,
                    note_id=note_id,
                    attempt=attempt,
                    content=claimed.content,
                    metadata=claimed.metadata,
                    max_chars=settings.stage_max_chars,
                )
            except Exception as exc:
                _lease_evidence(span, heartbeat)
                writer = _writable(conn, connections, note_id, attempt)
                _record_failure(writer, span, job, note_id, attempt, exc)
                raise
        _lease_evidence(span, heartbeat)
        if ledger.complete(
            _writable(conn, connections, note_id, attempt), note_id, attempt, enrichment
        ):
            span.set_attribute(spans.NOTE_OUTCOME, Outcome.COMPLETED)
            return {"outcome": Outcome.COMPLETED, "attempt": attempt}
        span.set_attribute(spans.NOTE_OUTCOME, Outcome.FENCED)
        span.set_attribute(spans.NOTE_FENCED_BY_HEARTBEAT, heartbeat.fenced)
        log.warning("note %s attempt %s finished but was fenced out", note_id, attempt)
        return {"outcome": Outcome.FENCED, "attempt": attempt}


def _give_back(lender: ConnectionLender, conn: Conn, heartbeats: list[LeaseHeartbeat]) -> None:
    if any(heartbeat.running for heartbeat in heartbeats) or not lender.give_back(conn):
        log.info("the connection lent to this job is not clean: the worker will replace it")


def _writable(conn: Conn, connections: contextlib.ExitStack, note_id: int, attempt: int) -> Conn:
    """The connection to write the attempt's end on: its own, or a new one when that broke
    while the stages ran (a heartbeat renewal on it met a dropped link). Nothing was in
    flight on a broken connection, so the fenced write goes exactly once either way."""
    if not (conn.broken or conn.closed):
        return conn
    log.info(
        "note %s attempt %s: its connection broke while the stages ran; "
        "writing the attempt's end on a new one",
        note_id,
        attempt,
    )
    return connections.enter_context(connect(get_runtime().settings))


def _lease_evidence(span: trace.Span, heartbeat: LeaseHeartbeat) -> None:
    """The span carries the last lease this attempt held (the checker's evidence that
    the attempt was alive until then, whatever a recovery records)."""
    if heartbeat.lease_until is not None:
        span.set_attribute(spans.NOTE_LEASE_UNTIL, heartbeat.lease_until.isoformat())


def _record_failure(
    conn: Conn,
    span: trace.Span,
    job: Any,
    note_id: int,
    attempt: int,
    exc: BaseException,
) -> None:
    settings = get_runtime().settings
    timed_out = isinstance(exc, JobTimeoutException)
    kind = "timeout" if timed_out else type(exc).__name__
    error = redact_text(f"attempt {attempt} failed ({kind}): {exc}")
    span.record_exception(exc)
    span.set_status(trace.StatusCode.ERROR, error[:200])
    new_status = ledger.fail_attempt(
        conn,
        note_id,
        attempt,
        error,
        max_attempts=settings.max_attempts,
        cause=EndCause.TIMEOUT if timed_out else EndCause.ERROR,
    )
    if new_status is None:
        span.set_attribute(spans.NOTE_OUTCOME, Outcome.FENCED)
    elif new_status == NoteStatus.FAILED:
        span.set_attribute(spans.NOTE_OUTCOME, Outcome.FAILED)
        if job is not None:
            job.retries_left = 0  # terminal in the ledger: RQ must not run it again
    else:
        span.set_attribute(spans.NOTE_OUTCOME, Outcome.RETRY)
