"""The ledger's transitions: each is ONE SQL statement guarded by the expected state.

Every statement also appends its ``note_events`` row (a data-modifying CTE), so
the history can never disagree with the current state. Completion and failure
are fenced by attempt number: a zombie attempt's write matches no row.

An event's ``at`` is the ``updated_at`` its statement wrote (one clock reading), so
retry gaps measured on events are exactly the gaps the claim enforces. Every event
leaving ``processing`` records its :class:`~notepipe.models.EndCause`; a claim records
its lease, and a recovery the ``lease_until`` it saw expire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from notepipe.models import EndCause, NoteStatus
from notepipe.store.rows import Conn, Row

_EVENT_COLUMNS = (
    "note_id, from_status, to_status, attempt, worker, job_id, error, at, cause, lease_until"
)


@dataclass(frozen=True)
class Claim:
    """A successful claim: this attempt holds the note's lease."""

    note_id: int
    attempt: int
    content: str
    metadata: Mapping[str, Any]
    trace_context: Mapping[str, str]
    lease_until: datetime | None = None


@dataclass(frozen=True)
class ClaimRefused:
    """The note could not be claimed; ``status`` says why (terminal, leased, missing...)."""

    note_id: int
    status: str | None
    attempt: int | None
    reason: str


def create_note(
    conn: Conn, content: str, metadata: Mapping[str, Any], trace_context: Mapping[str, str]
) -> Row:
    """Insert a ``pending`` note and its creation event; return the row."""
    row = conn.execute(
        f"""
        WITH ins AS (
            INSERT INTO notes (content, metadata, trace_context)
            VALUES (%(content)s, %(metadata)s, %(trace)s)
            RETURNING *
        ), ev AS (
            INSERT INTO note_events ({_EVENT_COLUMNS})
            SELECT id, NULL, 'pending', 0, NULL, NULL, NULL, created_at, NULL, NULL FROM ins
        )
        SELECT * FROM ins
        """,
        {
            "content": content,
            "metadata": Jsonb(dict(metadata)),
            "trace": Jsonb(dict(trace_context)),
        },
    ).fetchone()
    assert row is not None
    return row


def mark_queued(conn: Conn, note_id: int, job_id: str) -> bool:
    """``pending → queued`` after a successful enqueue; False if the note moved on already."""
    row = conn.execute(
        f"""
        WITH upd AS (
            UPDATE notes SET status = 'queued', job_id = %(job)s,
                   queued_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = %(id)s AND status = 'pending'
            RETURNING id, attempt, updated_at
        ), ev AS (
            INSERT INTO note_events ({_EVENT_COLUMNS})
            SELECT id, 'pending', 'queued', attempt, NULL, %(job)s, NULL, updated_at, NULL, NULL
            FROM upd
        )
        SELECT count(*) AS n FROM upd
        """,
        {"id": note_id, "job": job_id},
    ).fetchone()
    return bool(row and row["n"])


def record_enqueued(conn: Conn, note_id: int, job_id: str) -> bool:
    """Remember the job that now carries a ``queued`` note (a re-enqueue; no transition)."""
    cur = conn.execute(
        "UPDATE notes SET job_id = %s, queued_at = clock_timestamp()"
        " WHERE id = %s AND status = 'queued'",
        (job_id, note_id),
    )
    return cur.rowcount == 1


def claim(
    conn: Conn,
    note_id: int,
    *,
    worker: str,
    job_id: str,
    lease_ttl: float,
    max_attempts: int,
    retry_intervals: Sequence[float] = (0.0,),
) -> Claim | ClaimRefused:
    """``pending|queued → processing``: start attempt ``attempt + 1`` with a lease.

    A retry is refused until ``retry_intervals[k-1]`` seconds have passed since
    attempt k ended, whoever delivers it (RQ's own retry of a killed job, or the
    reconciler), so retry gaps hold by construction.
    """
    row = conn.execute(
        f"""
        WITH prev AS (
            SELECT id, status FROM notes WHERE id = %(id)s FOR UPDATE
        ), upd AS (
            UPDATE notes n SET status = 'processing', attempt = n.attempt + 1,
                   lease_until = clock_timestamp() + make_interval(secs => %(lease)s),
                   worker = %(worker)s, job_id = %(job)s, last_error = NULL,
                   started_at = clock_timestamp(), updated_at = clock_timestamp()
            FROM prev
            WHERE n.id = prev.id AND n.status IN ('pending', 'queued')
              AND n.attempt < %(max)s
              AND (n.attempt = 0 OR n.updated_at <= clock_timestamp() - make_interval(
                      secs => (%(gaps)s::float8[])[least(n.attempt, cardinality(%(gaps)s::float8[]))]))
            RETURNING n.id, n.attempt, n.content, n.metadata, n.trace_context,
                      prev.status AS from_status, n.updated_at, n.lease_until
        ), ev AS (
            INSERT INTO note_events ({_EVENT_COLUMNS})
            SELECT id, from_status, 'processing', attempt, %(worker)s, %(job)s, NULL,
                   updated_at, NULL, lease_until
            FROM upd
        )
        SELECT id, attempt, content, metadata, trace_context, from_status, lease_until,
               NULL AS status, NULL AS cur_attempt, NULL AS lease_live FROM upd
        UNION ALL
        SELECT n.id, NULL, NULL, NULL, NULL, NULL, NULL, n.status, n.attempt,
               coalesce(n.lease_until > clock_timestamp(), false)
        FROM notes n WHERE n.id = %(id)s AND NOT EXISTS (SELECT 1 FROM upd)
        """,
        {
            "id": note_id,
            "worker": worker,
            "job": job_id,
            "lease": lease_ttl,
            "max": max_attempts,
            "gaps": list(retry_intervals),
        },
    ).fetchone()
    if row is None:
        return ClaimRefused(note_id, None, None, f"note {note_id} does not exist in the ledger")
    if row["attempt"] is not None:
        return Claim(
            note_id=note_id,
            attempt=int(row["attempt"]),
            content=str(row["content"]),
            metadata=row["metadata"] or {},
            trace_context=row["trace_context"] or {},
            lease_until=row["lease_until"],
        )
    status, attempt = str(row["status"]), int(row["cur_attempt"])
    if status in (NoteStatus.COMPLETED, NoteStatus.FAILED):
        reason = f"note is already {status}"
    elif status == NoteStatus.PROCESSING:
        live = "a live" if row["lease_live"] else "an expired"
        reason = f"attempt {attempt} holds {live} lease (duplicate delivery)"
    elif attempt >= max_attempts:
        reason = f"retry budget exhausted ({attempt} of {max_attempts} attempts used)"
    else:
        reason = f"retry {attempt} is not due yet (its interval has not elapsed)"
    return ClaimRefused(note_id, status, attempt, reason)


def renew_lease(conn: Conn, note_id: int, attempt: int, lease_ttl: float) -> datetime | None:
    """Heartbeat: extend this attempt's lease; returns the new ``lease_until``, or None when
    the attempt is fenced out."""
    row = conn.execute(
        "UPDATE notes SET lease_until = clock_timestamp() + make_interval(secs => %s)"
        " WHERE id = %s AND status = 'processing' AND attempt = %s RETURNING lease_until",
        (lease_ttl, note_id, attempt),
    ).fetchone()
    return row["lease_until"] if row is not None else None


def complete(conn: Conn, note_id: int, attempt: int, enrichment: Mapping[str, Any]) -> bool:
    """``processing → completed`` with the enrichment, fenced by ``attempt``."""
    row = conn.execute(
        f"""
        WITH upd AS (
            UPDATE notes SET status = 'completed', enrichment = %(enrichment)s,
                   lease_until = NULL, last_error = NULL,
                   completed_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = %(id)s AND status = 'processing' AND attempt = %(attempt)s
            RETURNING id, attempt, worker, job_id, updated_at
        ), ev AS (
            INSERT INTO note_events ({_EVENT_COLUMNS})
            SELECT id, 'processing', 'completed', attempt, worker, job_id, NULL, updated_at,
                   %(cause)s, NULL
            FROM upd
        )
        SELECT count(*) AS n FROM upd
        """,
        {
            "id": note_id,
            "attempt": attempt,
            "enrichment": Jsonb(dict(enrichment)),
            "cause": EndCause.COMPLETED.value,
        },
    ).fetchone()
    return bool(row and row["n"])


def fail_attempt(
    conn: Conn,
    note_id: int,
    attempt: int,
    error: str,
    *,
    max_attempts: int,
    cause: EndCause = EndCause.ERROR,
    final: bool = False,
) -> NoteStatus | None:
    """End a failed attempt, fenced: ``processing → queued`` (retry) or ``→ failed`` (budget
    spent, or ``final``), recording ``cause`` (``non_retryable`` when ``final``). Returns
    the new status, or None when the attempt was fenced out."""
    if final:
        cause = EndCause.NON_RETRYABLE
    row = conn.execute(
        f"""
        WITH upd AS (
            UPDATE notes SET
                status = CASE WHEN %(final)s OR attempt >= %(max)s THEN 'failed' ELSE 'queued' END,
                lease_until = NULL, last_error = %(error)s, updated_at = clock_timestamp(),
                completed_at = CASE WHEN %(final)s OR attempt >= %(max)s
                                    THEN clock_timestamp() END
            WHERE id = %(id)s AND status = 'processing' AND attempt = %(attempt)s
            RETURNING id, status, attempt, worker, job_id, updated_at
        ), ev AS (
            INSERT INTO note_events ({_EVENT_COLUMNS})
            SELECT id, 'processing', status, attempt, worker, job_id, %(error)s, updated_at,
                   %(cause)s, NULL
            FROM upd
        )
        SELECT status FROM upd
        """,
        {
            "id": note_id,
            "attempt": attempt,
            "error": error[:4000],
            "max": max_attempts,
            "final": final,
            "cause": EndCause(cause).value,
        },
    ).fetchone()
    return NoteStatus(row["status"]) if row else None


def recover_expired(conn: Conn, *, grace: float, max_attempts: int, limit: int = 500) -> list[Row]:
    """Reconciler: attempts whose lease expired ``grace`` seconds ago are over.

    ``processing → queued`` (job id cleared, so a fresh job is enqueued when the
    retry is due) or ``→ failed`` when it was the last attempt, with cause
    ``lease_expired`` and the ``lease_until`` it saw. Returns the rows.
    """
    return conn.execute(
        f"""
        WITH expired AS (
            SELECT id, lease_until FROM notes
            WHERE status = 'processing'
              AND lease_until < clock_timestamp() - make_interval(secs => %(grace)s)
            ORDER BY lease_until LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ), upd AS (
            UPDATE notes n SET
                status = CASE WHEN n.attempt >= %(max)s THEN 'failed' ELSE 'queued' END,
                last_error = format('attempt %%s lost its lease (worker %%s stopped renewing it at %%s)',
                                    n.attempt, coalesce(n.worker, '?'), n.lease_until),
                completed_at = CASE WHEN n.attempt >= %(max)s THEN clock_timestamp() END,
                lease_until = NULL, job_id = NULL, updated_at = clock_timestamp()
            FROM expired WHERE n.id = expired.id AND n.status = 'processing'
            RETURNING n.id, n.status, n.attempt, n.worker, n.last_error, n.updated_at,
                      expired.lease_until AS lease_seen, n.trace_context
        ), ev AS (
            INSERT INTO note_events ({_EVENT_COLUMNS})
            SELECT id, 'processing', status, attempt, worker, NULL, last_error, updated_at,
                   %(cause)s, lease_seen
            FROM upd
        )
        SELECT * FROM upd
        """,
        {
            "grace": grace,
            "max": max_attempts,
            "limit": limit,
            "cause": EndCause.LEASE_EXPIRED.value,
        },
    ).fetchall()


def notes_needing_enqueue(conn: Conn, *, older_than: float, limit: int = 1000) -> list[Row]:
    """``pending``/``queued`` notes untouched for ``older_than`` seconds (reconciler input)."""
    return conn.execute(
        """
        SELECT id, status, attempt, job_id, trace_context,
               extract(epoch FROM clock_timestamp() - updated_at) AS idle_s
        FROM notes
        WHERE status IN ('pending', 'queued')
          AND updated_at < clock_timestamp() - make_interval(secs => %s)
        ORDER BY updated_at LIMIT %s
        """,
        (older_than, limit),
    ).fetchall()


def job_holders(
    conn: Conn, note_ids: list[int | None]
) -> dict[int, tuple[str, str | None, str | None]]:
    """For each note: (status, the job that holds or carries it, the claiming worker)."""
    ids = sorted({n for n in note_ids if n is not None})
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT id, status, job_id, worker FROM notes WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    return {int(r["id"]): (str(r["status"]), r["job_id"], r["worker"]) for r in rows}


def get_note(conn: Conn, note_id: int) -> Row | None:
    return conn.execute("SELECT * FROM notes WHERE id = %s", (note_id,)).fetchone()


def get_events(conn: Conn, note_id: int) -> list[Row]:
    return conn.execute(
        "SELECT from_status, to_status, attempt, worker, job_id, at, error, cause"
        " FROM note_events WHERE note_id = %s ORDER BY id",
        (note_id,),
    ).fetchall()


def list_notes(
    conn: Conn, *, status: NoteStatus | None, limit: int, after_id: int = 0
) -> list[Row]:
    return conn.execute(
        "SELECT id, status, attempt, created_at, updated_at, completed_at, last_error FROM notes"
        " WHERE (%(status)s::text IS NULL OR status = %(status)s) AND id > %(after)s"
        " ORDER BY id LIMIT %(limit)s",
        {"status": status.value if status else None, "limit": limit, "after": after_id},
    ).fetchall()


def count_by_status(conn: Conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM notes GROUP BY status").fetchall()
    counts = {status.value: 0 for status in NoteStatus}
    counts.update({str(r["status"]): int(r["n"]) for r in rows})
    return counts
