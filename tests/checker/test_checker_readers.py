"""read_ledger / read_rq_snapshot against real PostgreSQL and Redis.

The ledger is written by the pipeline's own transition functions on a fresh
database migrated by the pipeline's migrations; RQ state is made with RQ's own API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from psycopg.rows import dict_row
from rq import Queue
from rq.executions import Execution
from rq.job import JobStatus
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from harness.checker import CheckConfig, History, NoteClass, check, read_ledger, read_rq_snapshot
from harness.wait import wait_until
from notepipe.store import ledger
from notepipe.store.migrate import migrate

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
QUEUE = "note_enrichment"
ONE = "one [chaos:raise-until=1]"


def build_ledger(url: str) -> None:
    """note 1: fails once, completes on attempt 2; note 2: loses its lease, back to queued;
    note 3: only created."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        migrate(conn)
        n1 = int(ledger.create_note(conn, ONE, {}, {"traceparent": TRACEPARENT})["id"])
        n2 = int(ledger.create_note(conn, "two [chaos:exit]", {}, {})["id"])
        ledger.create_note(conn, "three", {}, {})
        assert ledger.mark_queued(conn, n1, "note-1-a0")
        claim = {"lease_ttl": 15.0, "max_attempts": 3}
        assert isinstance(
            ledger.claim(conn, n1, worker="w1", job_id="note-1-a0", **claim), ledger.Claim
        )
        assert (
            ledger.fail_attempt(
                conn, n1, 1, "attempt 1 failed (RuntimeError): boom", max_attempts=3
            )
            == "queued"
        )
        assert isinstance(
            ledger.claim(conn, n1, worker="w2", job_id="note-1-a1", **claim), ledger.Claim
        )
        assert ledger.complete(conn, n1, 2, {"hash": "x"})
        assert ledger.mark_queued(conn, n2, "note-2-a0")
        short = {"lease_ttl": 0.05, "max_attempts": 3}  # the worker dies at once
        assert isinstance(
            ledger.claim(conn, n2, worker="w3", job_id="note-2-a0", **short), ledger.Claim
        )
        recovered = wait_until(
            lambda: ledger.recover_expired(conn, grace=0, max_attempts=3),
            5,
            describe="note 2's lease to expire and be recovered",
        )
        assert [r["id"] for r in recovered] == [n2]


def test_read_ledger_from_real_postgres(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    build_ledger(url)
    with psycopg.connect(url, row_factory=dict_row) as conn:  # the pipeline's row factory
        notes, events = read_ledger(conn)
        conn.execute("SELECT 1")
        again = read_ledger(conn)  # inside an open transaction: joins it
    assert again == (notes, events)

    assert [(n.id, n.status, n.attempt, n.enrichment_present) for n in notes] == [
        (1, "completed", 2, True),
        (2, "queued", 1, False),
        (3, "pending", 0, False),
    ]
    assert notes[0].trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert notes[0].completed_at is not None
    assert notes[0].completed_at.tzinfo is not None
    assert notes[1].trace_id is None
    assert "lost its lease" in (notes[1].last_error or "")

    one = [
        (e.from_status, e.to_status, e.attempt, e.worker, e.job_id)
        for e in events
        if e.note_id == 1
    ]
    assert one == [
        (None, "pending", 0, None, None),
        ("pending", "queued", 0, None, "note-1-a0"),
        ("queued", "processing", 1, "w1", "note-1-a0"),
        ("processing", "queued", 1, "w1", "note-1-a0"),
        ("queued", "processing", 2, "w2", "note-1-a1"),
        ("processing", "completed", 2, "w2", "note-1-a1"),
    ]
    assert all(e.at.tzinfo is not None for e in events)
    causes = [(e.note_id, e.to_status, e.cause) for e in events if e.from_status == "processing"]
    assert causes == [
        (1, "queued", "error"),
        (1, "completed", "completed"),
        (2, "queued", "lease_expired"),
    ]
    claims = [e for e in events if e.to_status == "processing"]
    assert all(e.lease_until is not None and e.lease_until > e.at for e in claims)
    (recovery,) = [e for e in events if e.cause == "lease_expired"]
    assert recovery.lease_until is not None
    assert recovery.lease_until <= recovery.at  # the lease it saw expire
    assert notes[0].content == ONE
    assert notes[0].enrichment == {"hash": "x"}

    # and the checker reads it as the pipeline meant it
    observed = datetime.now(UTC)
    config = CheckConfig(
        max_attempts=3,
        retry_intervals=(0.0,),
        job_timeout=30.0,
        deadline_s=600.0,
    )
    result = check(History(notes, events, observed), config)
    assert result.verdict == "unknown", result.reasons  # notes 2 and 3 are in flight; no RQ
    assert not result.violations
    assert result.classifications[1].note_class is NoteClass.COMPLETED
    assert result.classifications[2].note_class is NoteClass.IN_FLIGHT
    later = check(History(notes, events, observed + timedelta(hours=1)), config)
    assert later.classifications[2].note_class is NoteClass.STUCK  # no RQ snapshot: unknown jobs
    assert {v.note_id for v in later.violations_of("terminal_within_deadline")} == {2, 3}


def test_read_rq_snapshot_from_real_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        queue = Queue(QUEUE, connection=client, serializer=JSONSerializer)
        Queue("other", connection=client).enqueue("builtins.print", job_id="elsewhere")
        for n in (1, 2, 3, 4):
            queue.enqueue("builtins.print", n, job_id=f"note-{n}-a0")
        Queue.lmove(client, queue.key, timeout=None)  # a worker's dequeue: note-1 -> intermediate
        queue.enqueue_in(timedelta(minutes=5), "builtins.print", job_id="note-5-a0")

        started = queue.fetch_job("note-2-a0")
        failed = queue.fetch_job("note-3-a0")
        assert started is not None
        assert failed is not None
        client.lrem(queue.key, 0, "note-2-a0")
        client.lrem(queue.key, 0, "note-3-a0")
        with client.pipeline() as pipe:
            execution = Execution.create(started, ttl=60, pipeline=pipe, worker_name="w1")
            started.set_status(JobStatus.STARTED, pipeline=pipe)
            failed.set_status(JobStatus.FAILED, pipeline=pipe)
            FailedJobRegistry(queue=queue).add(failed, ttl=600, exc_string="boom", pipeline=pipe)
            pipe.execute()
        # the worker died long ago: RQ's own registry methods would clean this entry up
        member = f"note-2-a0:{execution.id}"
        client.zadd(f"rq:wip:{QUEUE}", {member: time.time() - 3600}, xx=True)

        snapshot = read_rq_snapshot(client, QUEUE)
        assert read_rq_snapshot(client, QUEUE) == snapshot  # reading changes nothing
    finally:
        client.close()

    assert snapshot.queued_job_ids == ("note-4-a0",)
    assert snapshot.queue_length == 1
    assert snapshot.intermediate_job_ids == ("note-1-a0",)
    assert snapshot.started_job_ids == ("note-2-a0",)
    assert [m for m, _ in snapshot.started_entries] == [member]
    assert snapshot.scheduled_job_ids == ("note-5-a0",)
    assert snapshot.failed_job_ids == ("note-3-a0",)
    assert snapshot.job_statuses == {
        "note-1-a0": "queued",
        "note-2-a0": "started",
        "note-3-a0": "failed",
        "note-4-a0": "queued",
        "note-5-a0": "scheduled",
    }
