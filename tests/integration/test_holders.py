"""The harness's live ledger reads (what a fault asks while the run goes on), against a
real PostgreSQL."""

from __future__ import annotations

from harness.checker.holders import attempt_ended_by_itself, attempt_fate, processing_claims
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.rows import Conn


def _claim(conn: Conn, note_id: int, worker: str) -> int:
    claimed = ledger.claim(conn, note_id, worker=worker, job_id="j", lease_ttl=30.0, max_attempts=3)
    assert isinstance(claimed, ledger.Claim), claimed
    return claimed.attempt


def test_how_an_attempt_ended_is_read_from_its_ledger_event(
    ledger_conn: Conn, pipeline_settings: Settings
) -> None:
    note_id = int(ledger.create_note(ledger_conn, "fate", {}, {})["id"])
    first = _claim(ledger_conn, note_id, "w1")
    assert [(c.note_id, c.worker) for c in processing_claims(ledger_conn)] == [(note_id, "w1")]
    assert attempt_fate(ledger_conn, note_id, first) == (
        f"no end recorded; the note is processing in attempt {first} held by w1"
    )
    assert not attempt_ended_by_itself(ledger_conn, note_id, first)

    ledger.fail_attempt(ledger_conn, note_id, first, "boom", max_attempts=3)
    fate = attempt_fate(ledger_conn, note_id, first)
    assert fate.startswith("queued (cause error) by w1 at "), fate
    assert fate.endswith(": boom"), fate
    assert attempt_ended_by_itself(ledger_conn, note_id, first)
    assert not processing_claims(ledger_conn)
    assert attempt_fate(ledger_conn, 10**9, 1) == "the note is gone from the ledger"
