"""Real ``notepipe worker`` processes on real Redis and PostgreSQL."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import redis

from harness.chaos_stage import CHAOS_STAGE
from harness.processes import start_worker, wait_worker_registered
from harness.wait import wait_until
from notepipe.contracts import rq
from notepipe.deadlines import time_to_terminal
from notepipe.queue.connection import redis_connection
from notepipe.queue.enqueue import RQNoteQueue
from notepipe.reconcile import Reconciler
from notepipe.settings import DEFAULT_STAGES, Settings
from notepipe.store import ledger
from notepipe.store.rows import Conn


def _submit(conn: Conn, settings: Settings, content: str) -> int:
    """What the API does: commit, then enqueue, then mark queued."""
    note_id = int(ledger.create_note(conn, content, {}, {})["id"])
    job_id = RQNoteQueue(settings, redis_connection(settings)).enqueue_note(note_id)
    ledger.mark_queued(conn, note_id, job_id)
    return note_id


def _status(conn: Conn, note_id: int) -> str:
    note = ledger.get_note(conn, note_id)
    assert note is not None
    return str(note["status"])


def _all_terminal(conn: Conn, note_ids: list[int]) -> bool:
    return all(_status(conn, n) in ("completed", "failed") for n in note_ids)


def test_worker_enriches_a_note(
    ledger_conn: Conn, pipeline_settings: Settings, log_dir: Path
) -> None:
    note_id = _submit(
        ledger_conn,
        pipeline_settings,
        "Meet me at https://example.org on 27 Nov 2026 #release @ana — the pipeline works well.",
    )
    worker = start_worker(pipeline_settings, log_dir, burst=True)
    assert worker.wait_exit(timeout=60) == 0, worker.logs()
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None and note["status"] == "completed", worker.logs()
    enrichment = note["enrichment"]
    assert set(enrichment) >= {"normalize", "detect_language", "extract_entities", "content_hash"}
    assert enrichment["detect_language"]["code"] == "en"
    assert "https://example.org" in json.dumps(enrichment["extract_entities"])
    # The worker records its RQ name, notepipe.<host>.<pid>: the harness knows it by the pid.
    assert note["attempt"] == 1 and note["worker"] == rq.worker_name(worker.pid)


def test_jobs_travel_as_json_not_pickle(ledger_conn: Conn, pipeline_settings: Settings) -> None:
    note_id = _submit(ledger_conn, pipeline_settings, "json on the wire")
    raw = redis.Redis.from_url(pipeline_settings.redis_dsn)
    data = raw.hget(rq.job_key(rq.job_id(note_id, 0)), "data")
    assert data is not None
    payload = zlib.decompress(data)
    assert not payload.startswith(b"\x80"), "pickle protocol header found on the wire"
    decoded = json.loads(payload)
    assert decoded[0] == "notepipe.queue.job.process_note_job"
    assert decoded[2] == [note_id]
    job = raw.hgetall(rq.job_key(rq.job_id(note_id, 0)))
    assert int(job[b"timeout"]) == int(pipeline_settings.job_timeout)
    assert json.loads(job[b"meta"])["note_id"] == note_id


def test_poison_note_fails_after_the_retry_budget(
    ledger_conn: Conn, make_settings: object, log_dir: Path
) -> None:
    settings = make_settings(stages=(*DEFAULT_STAGES, CHAOS_STAGE))  # type: ignore[operator]
    note_id = _submit(ledger_conn, settings, "poison [chaos:raise]")
    ok_id = _submit(ledger_conn, settings, "heals [chaos:raise-until=1]")
    worker = start_worker(settings, log_dir)
    try:
        wait_until(
            lambda: _all_terminal(ledger_conn, [note_id, ok_id]),
            time_to_terminal(settings),
            describe="the poison and the flaky note to end",
        )
    finally:
        worker.stop()
    poison = ledger.get_note(ledger_conn, note_id)
    assert poison is not None and poison["status"] == "failed"
    assert poison["attempt"] == settings.max_attempts
    assert "ChaosError" in poison["last_error"]
    events = ledger.get_events(ledger_conn, note_id)
    claims = [e for e in events if e["to_status"] == "processing"]
    ends = [e for e in events if e["from_status"] == "processing"]
    assert len(claims) == settings.max_attempts
    assert [e["cause"] for e in ends] == ["error"] * settings.max_attempts
    for previous_end, next_claim in zip(ends, claims[1:], strict=False):
        gap = (next_claim["at"] - previous_end["at"]).total_seconds()
        # one clock stamps both events, and the claim enforces the interval on it
        assert gap >= settings.retry_interval(1), f"retry gap {gap:.4f}s too short"
    healed = ledger.get_note(ledger_conn, ok_id)
    assert healed is not None and healed["status"] == "completed" and healed["attempt"] == 2


def test_job_timeout_is_an_attempt_failure(
    ledger_conn: Conn, make_settings: object, log_dir: Path
) -> None:
    settings = make_settings(  # type: ignore[operator]
        stages=(*DEFAULT_STAGES, CHAOS_STAGE), job_timeout=1.0, retry_max=1
    )
    note_id = _submit(ledger_conn, settings, "slow [chaos:sleep=30]")
    worker = start_worker(settings, log_dir)
    try:
        wait_until(
            lambda: _all_terminal(ledger_conn, [note_id]),
            time_to_terminal(settings),
            describe="timeout",
        )
    finally:
        worker.stop()
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None and note["status"] == "failed" and note["attempt"] == 2
    assert "timeout" in note["last_error"].lower()
    events = ledger.get_events(ledger_conn, note_id)
    claims = [e for e in events if e["to_status"] == "processing"]
    ends = [e for e in events if e["from_status"] == "processing"]
    for claim, end in zip(claims, ends, strict=True):
        assert (end["at"] - claim["at"]).total_seconds() < settings.job_timeout + 2.0
    assert [e["cause"] for e in ends] == ["timeout", "timeout"]


def test_reconciler_recovers_a_flushed_redis(
    ledger_conn: Conn, pipeline_settings: Settings, log_dir: Path
) -> None:
    note_ids = [_submit(ledger_conn, pipeline_settings, f"note {i}") for i in range(20)]
    raw = redis.Redis.from_url(pipeline_settings.redis_dsn)
    assert raw.llen(f"rq:queue:{pipeline_settings.queue_name}") == 20
    raw.flushdb()
    conn_redis = redis_connection(pipeline_settings)
    reconciler = Reconciler(pipeline_settings, ledger_conn, conn_redis)
    # Notes become eligible one by one as each passes enqueue_grace (their creation
    # times spread when the machine is busy): gather what every pass re-enqueues.
    enqueued: list[int] = []

    def all_enqueued() -> bool:
        enqueued.extend(reconciler.run_pass().enqueued)
        return len(enqueued) >= len(note_ids)

    wait_until(all_enqueued, 30, describe="the reconciler to re-enqueue the lost jobs")
    assert sorted(enqueued) == note_ids, "each lost note is re-enqueued exactly once"
    assert reconciler.run_pass().enqueued == [], "a second pass must not enqueue again"
    worker = start_worker(pipeline_settings, log_dir, burst=True)
    assert worker.wait_exit(timeout=120) == 0, worker.logs()
    assert all(_status(ledger_conn, n) == "completed" for n in note_ids)


@pytest.mark.slow
def test_sigkilled_worker_note_completes_within_time_to_terminal(
    ledger_conn: Conn, make_settings: object, log_dir: Path
) -> None:
    settings = make_settings(stages=(*DEFAULT_STAGES, CHAOS_STAGE))  # type: ignore[operator]
    victim = start_worker(settings, log_dir, index=0)
    wait_worker_registered(settings.redis_dsn, victim)
    note_id = _submit(ledger_conn, settings, "slow [chaos:sleep=4]")
    wait_until(
        lambda: _status(ledger_conn, note_id) == "processing",
        30,
        describe="the victim to claim the note",
    )
    survivor = start_worker(settings, log_dir, index=1, with_reconciler=True)
    try:
        note = ledger.get_note(ledger_conn, note_id)
        assert note is not None and victim.recorded_as(note["worker"])
        victim.kill()
        wait_until(
            lambda: _status(ledger_conn, note_id) == "completed",
            time_to_terminal(settings),
            describe="the killed worker's note to complete elsewhere",
        )
    finally:
        survivor.stop()
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None and note["attempt"] == 2
    assert survivor.recorded_as(note["worker"])
    events = ledger.get_events(ledger_conn, note_id)
    assert any("lost its lease" in (e["error"] or "") for e in events)
    assert not victim.alive()


def test_an_attempt_whose_connection_broke_mid_stage_still_writes_its_completion(
    ledger_conn: Conn, make_settings: object, log_dir: Path
) -> None:
    """A link dropped while the stages run: the heartbeat's renewal on the attempt's
    connection fails and it renews on its own; the completion goes on a new connection
    instead of failing on the broken one (which left the attempt to lease expiry)."""
    settings = make_settings(  # type: ignore[operator]
        stages=(*DEFAULT_STAGES, CHAOS_STAGE), lease_ttl=3.0, heartbeat_interval=0.2
    )
    note_id = _submit(ledger_conn, settings, "long enough to cut [chaos:sleep=2.5]")
    worker = start_worker(settings, log_dir, burst=True)
    try:
        wait_until(lambda: _status(ledger_conn, note_id) == "processing", 30, describe="the claim")
        # the attempt's one connection: the backend that wrote its claim, idle in the stages
        row = ledger_conn.execute(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
            "WHERE application_name = 'notepipe' AND pid <> pg_backend_pid() "
            "AND datname = current_database()"
        ).fetchone()
        assert row is not None and row["n"] >= 1
        assert worker.wait_exit(timeout=60) == 0, worker.logs()
    finally:
        worker.stop()
    events = ledger.get_events(ledger_conn, note_id)
    ends = [(e["attempt"], e["cause"]) for e in events if e["from_status"] == "processing"]
    assert ends == [(1, "completed")], (ends, worker.logs())
    assert "writing the attempt's end on a new one" in worker.logs(tail=400)
