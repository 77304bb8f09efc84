"""The lease heartbeat against a real PostgreSQL: it renews over the attempt's own
connection, and over one of its own once that connection is gone."""

from __future__ import annotations

from harness.wait import wait_until
from notepipe.queue.heartbeat import LeaseHeartbeat
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.db import connect
from notepipe.store.rows import Conn


def _claimed_note(conn: Conn, settings: Settings) -> int:
    note_id = int(ledger.create_note(conn, "beat", {}, {})["id"])
    claimed = ledger.claim(
        conn, note_id, worker="w", job_id="j", lease_ttl=2.0, max_attempts=settings.max_attempts
    )
    assert isinstance(claimed, ledger.Claim)
    return note_id


def _lease(conn: Conn, note_id: int) -> object:
    row = conn.execute("SELECT lease_until FROM notes WHERE id = %s", (note_id,)).fetchone()
    assert row is not None
    return row["lease_until"]


def _backends(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'notepipe'"
    ).fetchone()
    assert row is not None
    return int(row["n"])


def test_heartbeat_renews_over_the_shared_connection(
    ledger_conn: Conn, pipeline_settings: Settings
) -> None:
    settings = pipeline_settings.model_copy(update={"lease_ttl": 2.0, "heartbeat_interval": 0.2})
    with connect(settings) as shared:
        note_id = _claimed_note(shared, settings)
        first = _lease(ledger_conn, note_id)
        before = _backends(ledger_conn)
        with LeaseHeartbeat(settings, note_id, 1, shared=shared) as heartbeat:
            wait_until(lambda: heartbeat.beats >= 3, 10, describe="three lease renewals")
            assert _backends(ledger_conn) == before, "the heartbeat opened a connection"
        assert _lease(ledger_conn, note_id) > first  # type: ignore[operator]
        assert not heartbeat.fenced


def test_heartbeat_opens_its_own_connection_once_the_shared_one_is_gone(
    ledger_conn: Conn, pipeline_settings: Settings
) -> None:
    settings = pipeline_settings.model_copy(update={"lease_ttl": 2.0, "heartbeat_interval": 0.2})
    shared = connect(settings)
    note_id = _claimed_note(shared, settings)
    with LeaseHeartbeat(settings, note_id, 1, shared=shared) as heartbeat:
        wait_until(lambda: heartbeat.beats >= 1, 10, describe="a renewal over the shared link")
        shared.close()
        beats = heartbeat.beats
        wait_until(lambda: heartbeat.beats >= beats + 2, 10, describe="renewals after it closed")
    assert not heartbeat.fenced
    # and a newer attempt fences it out
    with connect(settings) as conn, LeaseHeartbeat(settings, note_id, 0, shared=conn) as stale:
        wait_until(lambda: stale.fenced, 10, describe="the stale attempt to be fenced")
