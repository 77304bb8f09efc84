"""Live ledger reads for the harness's faults: which worker holds which note, now.

The checker's other readers (:mod:`harness.checker.readers`) read the whole ledger once,
after the run; these small queries run *during* it, so a fault can aim at a lifecycle
point ("the worker holding note #0 in attempt 2") and then verify what it hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from notepipe.models import SELF_ENDED_CAUSES


@dataclass(frozen=True)
class Claim:
    """A note in ``processing``: its attempt and the RQ worker name the ledger recorded."""

    note_id: int
    attempt: int
    worker: str
    age_s: float = 0.0  # since the claim, by the database's clock

    def to_dict(self) -> dict[str, int]:
        return {"note": self.note_id, "attempt": self.attempt}


def processing_in_attempt(conn: psycopg.Connection[Any], index: Any, attempt: int) -> Claim | None:
    """The ``index``-th note of the ledger (by id, from 0), or with ``index == "any"`` the
    first note, if it is ``processing`` in ``attempt`` with a worker recorded."""
    with conn.cursor(row_factory=tuple_row) as cur:
        if index == "any":
            row = cur.execute(
                "SELECT id, worker FROM notes WHERE status = 'processing' AND attempt = %s "
                "AND worker IS NOT NULL ORDER BY id LIMIT 1",
                (attempt,),
            ).fetchone()
            return Claim(int(row[0]), attempt, str(row[1])) if row else None
        row = cur.execute(
            "SELECT id, worker, status, attempt FROM notes ORDER BY id OFFSET %s LIMIT 1",
            (int(index),),
        ).fetchone()
    if row is None or row[2] != "processing" or row[3] != attempt or row[1] is None:
        return None
    return Claim(int(row[0]), attempt, str(row[1]))


def processing_claims(conn: psycopg.Connection[Any]) -> list[Claim]:
    """Every note ``processing`` now, with the worker that claimed it and how long ago."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT id, attempt, worker, "
            "EXTRACT(EPOCH FROM clock_timestamp() - coalesce(started_at, clock_timestamp())) "
            "FROM notes WHERE status = 'processing' AND worker IS NOT NULL ORDER BY id"
        ).fetchall()
    return [Claim(int(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]


def _attempt_end(conn: psycopg.Connection[Any], note_id: int, attempt: int) -> Any:
    """The event that took ``attempt`` of the note out of ``processing`` (to_status, cause,
    worker, error, at), or ``None``."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(
            "SELECT to_status, cause, worker, error, at FROM note_events WHERE note_id = %s "
            "AND attempt = %s AND from_status = 'processing' ORDER BY id LIMIT 1",
            (note_id, attempt),
        ).fetchone()


def attempt_ended_by_itself(conn: psycopg.Connection[Any], note_id: int, attempt: int) -> bool:
    """Did ``attempt`` of the note end with a cause its own worker records (completed, error,
    timeout, non-retryable), rather than still running or recovered by the reconciler?"""
    end = _attempt_end(conn, note_id, attempt)
    return end is not None and end[1] in SELF_ENDED_CAUSES


def attempt_fate(conn: psycopg.Connection[Any], note_id: int, attempt: int) -> str:
    """How ``attempt`` of the note left ``processing``, for a fault's "missed" message:
    ``"queued (cause error) by notepipe.host.42: <error>"``, or the note's status now."""
    end = _attempt_end(conn, note_id, attempt)
    if end is not None:
        error = f": {end[3]}" if end[3] else ""
        return f"{end[0]} (cause {end[1]}) by {end[2]} at {end[4]:%H:%M:%S.%f}{error}"
    with conn.cursor(row_factory=tuple_row) as cur:
        now = cur.execute(
            "SELECT status, attempt, worker FROM notes WHERE id = %s", (note_id,)
        ).fetchone()
    if now is None:
        return "the note is gone from the ledger"
    return f"no end recorded; the note is {now[0]} in attempt {now[1]} held by {now[2]}"
