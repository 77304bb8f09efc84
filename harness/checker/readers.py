"""Read the checker's witnesses: the PostgreSQL ledger and raw RQ state.

The RQ reader touches keys directly (``LRANGE``, ``ZRANGE``, ``SCAN``, ``HMGET``):
RQ's registry methods (``get_job_ids``, ``count``) run a cleanup first, which
would repair the very state the checker is trying to observe. Key names are
those of rq 2.12: ``rq:queue:<q>``, ``rq:queue:<q>:intermediate``,
``rq:wip:<q>`` (started registry, members ``<job_id>:<execution_id>``),
``rq:scheduled:<q>``, ``rq:failed:<q>``, ``rq:finished:<q>``, ``rq:job:<id>``.

These key names are spelled here on purpose, a copy of
:mod:`notepipe.contracts.rq`: the checker is an independent witness, and a wrong key in
the pipeline's contract must not blind the checker to what RQ really holds.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg
import redis
from psycopg.rows import tuple_row

from harness.checker.history import LedgerEvent, LedgerNote, RqSnapshot

_NOTES_SQL = """
SELECT id, status, attempt, created_at, completed_at, enrichment IS NOT NULL,
       last_error, job_id, trace_context ->> 'traceparent', content, enrichment
FROM notes
ORDER BY id
"""
_EVENTS_SQL = """
SELECT note_id, from_status, to_status, attempt, worker, job_id, at, error, cause, lease_until
FROM note_events
ORDER BY note_id, id
"""
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def trace_id_from_traceparent(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent``, or ``None`` if absent or malformed."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if match is None or set(match["trace"]) == {"0"}:
        return None
    return match["trace"]


def read_ledger(
    conn: psycopg.Connection[Any],
) -> tuple[tuple[LedgerNote, ...], tuple[LedgerEvent, ...]]:
    """All notes and their events, read in one repeatable-read snapshot when possible.

    Works with any row factory on ``conn``; inside an already open transaction the
    reads join it (as a savepoint) and see that transaction's snapshot.
    """
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        if idle:
            # transaction() opened the outermost transaction: make it one snapshot.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute(_NOTES_SQL)
        notes = tuple(
            LedgerNote(
                id=int(row[0]),
                status=str(row[1]),
                attempt=int(row[2]),
                created_at=_aware(row[3]),
                completed_at=_aware(row[4]) if row[4] is not None else None,
                enrichment_present=bool(row[5]),
                last_error=row[6],
                job_id=row[7],
                trace_id=trace_id_from_traceparent(row[8]),
                content=row[9],
                enrichment=row[10],
            )
            for row in cur.fetchall()
        )
        cur.execute(_EVENTS_SQL)
        events = tuple(
            LedgerEvent(
                note_id=int(row[0]),
                from_status=row[1],
                to_status=str(row[2]),
                attempt=int(row[3]),
                worker=row[4],
                job_id=row[5],
                at=_aware(row[6]),
                error=row[7],
                cause=row[8],
                lease_until=_aware(row[9]) if row[9] is not None else None,
            )
            for row in cur.fetchall()
        )
    return notes, events


def _aware(value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError(f"expected a timezone-aware timestamp from the ledger, got {value!r}")
    return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_rq_snapshot(client: redis.Redis[Any], queue_name: str) -> RqSnapshot:
    """Raw RQ state of ``queue_name``: lists, registries and every job hash of that queue."""
    queue_key = f"rq:queue:{queue_name}"
    pipe = client.pipeline(transaction=True)
    pipe.lrange(queue_key, 0, -1)
    pipe.lrange(f"{queue_key}:intermediate", 0, -1)
    pipe.zrange(f"rq:wip:{queue_name}", 0, -1, withscores=True)
    pipe.zrange(f"rq:scheduled:{queue_name}", 0, -1)
    pipe.zrange(f"rq:failed:{queue_name}", 0, -1)
    pipe.zrange(f"rq:finished:{queue_name}", 0, -1)
    queued, intermediate, started, scheduled, failed, finished = pipe.execute()
    started_entries = tuple((_text(member), float(score)) for member, score in started)

    job_keys = sorted(
        key
        for key in (_text(k) for k in client.scan_iter(match="rq:job:*", count=500))
        if ":" not in key[len("rq:job:") :]
    )
    statuses: dict[str, str | None] = {}
    if job_keys:
        pipe = client.pipeline(transaction=False)
        for key in job_keys:
            pipe.hmget(key, ["status", "origin"])
        for key, (status, origin) in zip(job_keys, pipe.execute(), strict=True):
            if origin is not None and _text(origin) != queue_name:
                continue
            statuses[key[len("rq:job:") :]] = _text(status) if status is not None else None

    return RqSnapshot(
        queue_name=queue_name,
        queued_job_ids=tuple(_text(j) for j in queued),
        intermediate_job_ids=tuple(_text(j) for j in intermediate),
        started_job_ids=tuple(member.split(":", 1)[0] for member, _ in started_entries),
        started_entries=started_entries,
        scheduled_job_ids=tuple(_text(j) for j in scheduled),
        failed_job_ids=tuple(_text(j) for j in failed),
        finished_job_ids=tuple(_text(j) for j in finished),
        job_statuses=statuses,
    )
