"""The reconciler: repairs what Redis and RQ lose, driven by the ledger.

Each pass:

1. ``processing`` notes whose lease expired ``lease_grace`` ago: the attempt is
   over (worker killed, paused, partitioned) → ``queued`` for a retry, or
   ``failed`` with the reason when it was the last attempt;
2. ``pending``/``queued`` notes with no live job in Redis (never enqueued, Redis
   restarted or flushed, RQ's retry lost) → enqueued again once their retry is due;
3. RQ's own abandoned-job cleanup (started registry) and overdue scheduled jobs,
   from one reconciler at a time under a Redis lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from psycopg import Error as PsycopgError
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from notepipe.contracts import rq as keys
from notepipe.contracts import spans
from notepipe.errors import EnqueueFailed
from notepipe.models import NoteStatus
from notepipe.queue.enqueue import RQNoteQueue
from notepipe.redact import redact_text
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.rows import Conn, Row
from notepipe.telemetry import context_from

log = logging.getLogger(__name__)
tracer = trace.get_tracer("notepipe.reconcile")

LIVE_JOB_STATUSES = (b"queued", b"scheduled", b"deferred")
LOCK_KEY = "notepipe:reconcile:lock:{queue}"

#: Per process: when each job id was first seen in RQ's intermediate list.
_INTERMEDIATE_SEEN: dict[str, dict[str, float]] = {}


@dataclass
class PassReport:
    """What one reconciler pass did."""

    recovered: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    rescheduled_jobs: int = 0
    abandoned_jobs: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> bool:
        return bool(self.recovered or self.failed or self.enqueued or self.rescheduled_jobs)


def _trace_recovery(row: Row) -> None:
    """A ``note.recover`` span in the note's own trace: the attempt a dead (or silent)
    worker left behind is over. A killed attempt ends no span of its own; this one says
    which attempt was lost, on which worker, and where the note went."""
    with tracer.start_as_current_span(
        spans.RECOVER_SPAN,
        context=context_from(row["trace_context"] or {}),
        attributes={
            spans.NOTE_ID: int(row["id"]),
            spans.NOTE_ATTEMPT: int(row["attempt"]),
            spans.RQ_WORKER: str(row["worker"] or ""),
            spans.NOTE_OUTCOME: spans.LEASE_EXPIRED,
            spans.NOTE_STATUS: str(row["status"]),
        },
    ):
        pass


class Reconciler:
    def __init__(self, settings: Settings, conn: Conn, redis: Redis[bytes]) -> None:
        self.settings = settings
        self.conn = conn
        self.redis = redis
        self.note_queue = RQNoteQueue(settings, redis)
        self.queue = Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)
        self.scheduled_key = keys.registry_key("scheduled", settings.queue_name)
        self._intermediate_seen = _INTERMEDIATE_SEEN.setdefault(settings.queue_name, {})

    def run_pass(self) -> PassReport:
        report = PassReport()
        with tracer.start_as_current_span(spans.RECONCILE_SPAN) as span:
            self._recover_expired(report)
            self._enqueue_orphans(report)
            self._rq_maintenance(report)
            span.set_attribute(spans.RECONCILE_RECOVERED, len(report.recovered))
            span.set_attribute(spans.RECONCILE_ENQUEUED, len(report.enqueued))
            span.set_attribute(spans.RECONCILE_FAILED, len(report.failed))
        if report.changed:
            log.info("reconcile pass: %s", report.as_dict())
        return report

    def _recover_expired(self, report: PassReport) -> None:
        try:
            rows = ledger.recover_expired(
                self.conn, grace=self.settings.lease_grace, max_attempts=self.settings.max_attempts
            )
        except PsycopgError as exc:
            report.errors.append(f"recover expired leases: {redact_text(str(exc))}")
            return
        for row in rows:
            target = report.failed if row["status"] == NoteStatus.FAILED else report.recovered
            target.append(int(row["id"]))
            _trace_recovery(row)

    def _enqueue_orphans(self, report: PassReport) -> None:
        try:
            candidates = ledger.notes_needing_enqueue(
                self.conn, older_than=self.settings.enqueue_grace
            )
        except PsycopgError as exc:
            report.errors.append(f"list notes to enqueue: {redact_text(str(exc))}")
            return
        if not candidates:
            return
        try:
            live = self._live_job_ids(row["job_id"] for row in candidates)
        except RedisError as exc:
            report.errors.append(f"read RQ state: {redact_text(str(exc))}")
            return
        for row in candidates:
            note_id, attempt = int(row["id"]), int(row["attempt"])
            if row["job_id"] in live:
                continue
            if attempt > 0 and float(row["idle_s"]) < self.settings.retry_interval(attempt):
                continue  # the retry is not due yet
            # The enqueue span belongs to the note's trace (one note, one trace).
            token = otel_context.attach(context_from(row["trace_context"] or {}))
            try:
                job_id = self.note_queue.enqueue_note(
                    note_id,
                    attempts_made=attempt,
                    trace_context=row["trace_context"],
                    force=True,
                    at_front=True,
                )
            except EnqueueFailed as exc:
                report.errors.append(str(exc))
                return
            finally:
                otel_context.detach(token)
            if row["status"] == NoteStatus.PENDING:
                ledger.mark_queued(self.conn, note_id, job_id)
            else:
                ledger.record_enqueued(self.conn, note_id, job_id)
            report.enqueued.append(note_id)

    def _live_job_ids(self, job_ids: Iterable[str | None]) -> set[str]:
        """Job ids that will still run: in the queue (or RQ's intermediate list, or
        scheduled) with a queued/scheduled/deferred hash, or started so recently that
        its claim may still be on the way. A job "started" for longer whose note is
        still unclaimed died between dequeue and claim."""
        wanted = [job_id for job_id in job_ids if job_id]
        if not wanted:
            return set()
        queue_key = self.queue.key
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(queue_key, 0, -1)
            pipe.lrange(f"{queue_key}:intermediate", 0, -1)
            pipe.zrange(self.scheduled_key, 0, -1)
            for job_id in wanted:
                pipe.hmget(Job.key_for(job_id), "status", "started_at")
            results = pipe.execute()
        waiting = {j.decode() for j in results[0]} | {j.decode() for j in results[1]}
        scheduled = {j.decode() for j in results[2]}
        live: set[str] = set()
        claim_window = self.settings.lease_ttl + self.settings.lease_grace + 1.0
        for job_id, (status, started_at) in zip(wanted, results[3:], strict=True):
            if status in LIVE_JOB_STATUSES and (job_id in waiting or job_id in scheduled):
                live.add(job_id)
            elif status == b"started" and started_at and _age(started_at.decode()) < claim_window:
                live.add(job_id)  # dequeued moments ago: its claim is on the way
        return live

    def _rq_maintenance(self, report: PassReport) -> None:
        lock = self.redis.lock(
            LOCK_KEY.format(queue=self.settings.queue_name),
            # Short: a pass takes well under a second, and a lock orphaned by a Redis
            # restart (AOF keeps it) must not stall maintenance for long.
            timeout=max(2.0, 4 * self.settings.reconcile_interval),
            blocking=False,
        )
        try:
            if not lock.acquire():
                return
            try:
                report.abandoned_jobs = self._expire_abandoned_executions()
                report.abandoned_jobs += self._clean_intermediate()
                StartedJobRegistry(queue=self.queue).cleanup()
                report.rescheduled_jobs = self._enqueue_overdue_scheduled()
            finally:
                lock.release()
        except RedisError as exc:
            report.errors.append(f"RQ maintenance: {redact_text(str(exc))}")

    def _expire_abandoned_executions(self) -> int:
        """Started-registry entries (executions) that no longer hold their note.

        RQ keeps a dead worker's execution "started" until its heartbeat TTL (up to
        ~90 s) runs out. The ledger knows better: an execution holds its note only
        while the note is ``processing`` under its job and its worker, or, for at
        most one lease, while the note waits to be claimed by it. Other entries get
        a score in the past, so RQ's own ``StartedJobRegistry.cleanup()`` handles
        them (failure, retry, callbacks) in the same pass.
        """
        key = keys.registry_key("started", self.settings.queue_name)
        members = [m.decode() for m in self.redis.zrange(key, 0, -1)]
        if not members:
            return 0
        with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hmget(keys.execution_key(member), "worker_name", "created_at")
            executions = pipe.execute()
        job_ids = [keys.started_member_job_id(member) for member in members]
        holders = ledger.job_holders(self.conn, [_note_id_of(j) for j in job_ids])
        claim_window = self.settings.lease_ttl + self.settings.lease_grace + 1.0
        now = time.time()
        expired = 0
        for member, job_id, (worker, created) in zip(members, job_ids, executions, strict=True):
            note_id = _note_id_of(job_id)
            if note_id is None:
                continue
            age = now - float(created) if created else claim_window + 1
            status, holder, note_worker = holders.get(note_id, (None, None, None))
            if status == "processing":
                holds = holder == job_id and note_worker == (worker or b"").decode()
            elif status in ("pending", "queued"):
                holds = holder == job_id and age < claim_window
            else:
                holds = False
            if not holds and age > 1.0:
                self.redis.zadd(key, {member: 1}, xx=True)
                expired += 1
        return expired

    def _clean_intermediate(self) -> int:
        """Jobs a worker popped into RQ's intermediate list but never started (its horse
        died first) stay there until RQ's next maintenance (minutes). Entries seen here
        for longer than a claim window without an execution are removed; the ledger
        then shows their notes without a live job, and they are enqueued again."""
        key = keys.intermediate_key(self.settings.queue_name)
        now = time.monotonic()
        present = {j.decode() for j in self.redis.lrange(key, 0, -1)}
        for job_id in list(self._intermediate_seen):
            if job_id not in present:
                del self._intermediate_seen[job_id]
        if not present:
            return 0
        started = {
            keys.started_member_job_id(m.decode())
            for m in self.redis.zrange(
                keys.registry_key("started", self.settings.queue_name), 0, -1
            )
        }
        claim_window = self.settings.lease_ttl + self.settings.lease_grace + 1.0
        removed = 0
        for job_id in present - started:
            first_seen = self._intermediate_seen.setdefault(job_id, now)
            if now - first_seen > claim_window:
                self.redis.lrem(key, 0, job_id)
                del self._intermediate_seen[job_id]
                removed += 1
        return removed

    def _enqueue_overdue_scheduled(self) -> int:
        """Scheduled jobs overdue by more than a few seconds have no live RQ scheduler
        (its worker died holding the scheduler lock): enqueue them ourselves."""
        overdue_before = time.time() - max(5.0, 2 * self.settings.reconcile_interval)
        job_ids = [
            j.decode()
            for j in self.redis.zrangebyscore(
                self.scheduled_key, 0, overdue_before, start=0, num=500
            )
        ]
        if not job_ids:
            return 0
        jobs = Job.fetch_many(job_ids, connection=self.redis, serializer=JSONSerializer)
        with self.redis.pipeline() as pipe:
            for job in jobs:
                if job is not None:
                    self.queue._enqueue_job(job, pipeline=pipe)
            for job_id in job_ids:
                pipe.zrem(self.scheduled_key, job_id)
            pipe.execute()
        return len(job_ids)


def run_forever(
    settings: Settings,
    conn_factory: Callable[[], Conn],
    redis: Redis[bytes],
    stop: threading.Event | None = None,
) -> None:
    """Run passes every ``reconcile_interval`` seconds until ``stop`` is set.

    ``conn_factory()`` returns a ledger connection; it is re-made after errors.
    """
    stop = stop or threading.Event()
    conn: Conn | None = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            if conn is None or conn.closed:
                conn = conn_factory()
            assert conn is not None
            report = Reconciler(settings, conn, redis).run_pass()
            if report.errors:
                log.warning("reconcile pass had errors: %s", "; ".join(report.errors))
        except (PsycopgError, RedisError) as exc:
            log.warning("reconcile pass failed, retrying: %s", redact_text(str(exc)))
            if conn is not None:
                conn.close()
            conn = None
        stop.wait(max(0.0, settings.reconcile_interval - (time.monotonic() - started)))
    if conn is not None:
        conn.close()


def _note_id_of(job_id: str) -> int | None:
    """The note of one of our job ids; None for jobs that are not ours."""
    parsed = keys.parse_job_id(job_id)
    return parsed[0] if parsed else None


def _age(utc_text: str) -> float:
    """Seconds since an RQ UTC timestamp (``2026-11-27T19:20:01.123456Z``)."""
    from datetime import UTC, datetime

    if not utc_text:
        return float("inf")
    stamp = datetime.fromisoformat(utc_text.replace("Z", "+00:00")).replace(tzinfo=UTC)
    return time.time() - stamp.timestamp()
