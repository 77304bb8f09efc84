"""The ledger's guarded transitions against a real PostgreSQL."""

from __future__ import annotations

import pytest

from harness.wait import wait_until
from notepipe.models import ALLOWED_TRANSITIONS, NoteStatus
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.rows import Conn


def _claim(conn: Conn, settings: Settings, note_id: int, worker: str = "w1") -> ledger.Claim:
    claimed = ledger.claim(
        conn,
        note_id,
        worker=worker,
        job_id=f"job-{worker}",
        lease_ttl=settings.lease_ttl,
        max_attempts=settings.max_attempts,
    )
    assert isinstance(claimed, ledger.Claim), claimed
    return claimed


def test_lifecycle_records_every_transition(ledger_conn: Conn, pipeline_settings: Settings) -> None:
    row = ledger.create_note(
        ledger_conn, "hello", {"k": "v"}, {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    )
    note_id = int(row["id"])
    assert row["status"] == "pending"
    assert ledger.mark_queued(ledger_conn, note_id, "job-0")
    assert not ledger.mark_queued(ledger_conn, note_id, "job-0"), "pending→queued must be guarded"
    claimed = _claim(ledger_conn, pipeline_settings, note_id)
    assert claimed.attempt == 1
    assert claimed.metadata == {"k": "v"}
    assert claimed.trace_context["traceparent"].startswith("00-111")
    assert ledger.complete(ledger_conn, note_id, 1, {"stage": {"x": 1}})
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None
    assert note["status"] == "completed"
    assert note["enrichment"] == {"stage": {"x": 1}}
    assert note["completed_at"] is not None and note["lease_until"] is None
    events = ledger.get_events(ledger_conn, note_id)
    transitions = [(e["from_status"], e["to_status"]) for e in events]
    assert transitions == [
        (None, "pending"),
        ("pending", "queued"),
        ("queued", "processing"),
        ("processing", "completed"),
    ]
    for from_status, to_status in transitions:
        key = (NoteStatus(from_status) if from_status else None, NoteStatus(to_status))
        assert key in ALLOWED_TRANSITIONS


def test_terminal_note_cannot_be_claimed_or_rewritten(
    ledger_conn: Conn, pipeline_settings: Settings
) -> None:
    note_id = int(ledger.create_note(ledger_conn, "x", {}, {})["id"])
    _claim(ledger_conn, pipeline_settings, note_id)
    assert ledger.complete(ledger_conn, note_id, 1, {"a": 1})
    refused = ledger.claim(
        ledger_conn, note_id, worker="w2", job_id="j2", lease_ttl=5, max_attempts=3
    )
    assert isinstance(refused, ledger.ClaimRefused)
    assert refused.status == "completed"
    assert not ledger.complete(ledger_conn, note_id, 1, {"b": 2})
    assert ledger.fail_attempt(ledger_conn, note_id, 1, "late", max_attempts=3) is None
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None and note["enrichment"] == {"a": 1}
    assert [e["to_status"] for e in ledger.get_events(ledger_conn, note_id)].count("completed") == 1


def test_duplicate_delivery_is_refused_while_the_lease_is_live(
    ledger_conn: Conn, pipeline_settings: Settings
) -> None:
    note_id = int(ledger.create_note(ledger_conn, "x", {}, {})["id"])
    _claim(ledger_conn, pipeline_settings, note_id, worker="w1")
    refused = ledger.claim(
        ledger_conn, note_id, worker="w2", job_id="j2", lease_ttl=5, max_attempts=3
    )
    assert isinstance(refused, ledger.ClaimRefused)
    assert "live lease" in refused.reason


def test_stale_attempt_is_fenced_after_recovery(ledger_conn: Conn, make_settings: object) -> None:
    settings = make_settings(lease_ttl=0.3, heartbeat_interval=0.1, lease_grace=0.0)  # type: ignore[operator]
    note_id = int(ledger.create_note(ledger_conn, "x", {}, {})["id"])
    _claim(ledger_conn, settings, note_id, worker="zombie")
    recovered = wait_until(
        lambda: ledger.recover_expired(ledger_conn, grace=0.0, max_attempts=3),
        10,
        describe="the expired lease to be recovered",
    )
    assert [int(r["id"]) for r in recovered] == [note_id]
    assert recovered[0]["status"] == "queued"
    assert "lost its lease" in recovered[0]["last_error"]
    events = ledger.get_events(ledger_conn, note_id)
    assert events[-1]["cause"] == "lease_expired"
    second = _claim(ledger_conn, settings, note_id, worker="fresh")
    assert second.attempt == 2
    # The zombie (attempt 1) wakes up: none of its writes may land.
    assert ledger.renew_lease(ledger_conn, note_id, 1, 5) is None
    renewed = ledger.renew_lease(ledger_conn, note_id, 2, 5)
    assert renewed is not None and renewed.tzinfo is not None  # the new lease_until
    assert not ledger.complete(ledger_conn, note_id, 1, {"zombie": True})
    assert ledger.fail_attempt(ledger_conn, note_id, 1, "zombie error", max_attempts=3) is None
    assert ledger.complete(ledger_conn, note_id, 2, {"fresh": True})
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None and note["enrichment"] == {"fresh": True} and note["attempt"] == 2


def test_last_attempt_failure_is_terminal(ledger_conn: Conn, pipeline_settings: Settings) -> None:
    note_id = int(ledger.create_note(ledger_conn, "x", {}, {})["id"])
    statuses = []
    for attempt in range(1, pipeline_settings.max_attempts + 1):
        _claim(ledger_conn, pipeline_settings, note_id)
        statuses.append(
            ledger.fail_attempt(
                ledger_conn,
                note_id,
                attempt,
                f"boom {attempt}",
                max_attempts=pipeline_settings.max_attempts,
            )
        )
    assert statuses == [NoteStatus.QUEUED] * (pipeline_settings.max_attempts - 1) + [
        NoteStatus.FAILED
    ]
    refused = ledger.claim(
        ledger_conn,
        note_id,
        worker="w",
        job_id="j",
        lease_ttl=5,
        max_attempts=pipeline_settings.max_attempts,
    )
    assert isinstance(refused, ledger.ClaimRefused) and refused.status == "failed"
    note = ledger.get_note(ledger_conn, note_id)
    assert note is not None and note["last_error"] == f"boom {pipeline_settings.max_attempts}"


def test_events_are_append_only(ledger_conn: Conn) -> None:
    import psycopg

    note_id = int(ledger.create_note(ledger_conn, "x", {}, {})["id"])
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        ledger_conn.execute("DELETE FROM note_events WHERE note_id = %s", (note_id,))


def test_migrations_are_recorded_and_idempotent(ledger_conn: Conn) -> None:
    from notepipe.store.migrate import available_migrations, migrate

    assert migrate(ledger_conn) == []
    versions = [r["version"] for r in ledger_conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in available_migrations()]


def test_a_retry_is_refused_until_its_interval_has_elapsed(
    ledger_conn: Conn, pipeline_settings: Settings
) -> None:
    note_id = int(ledger.create_note(ledger_conn, "x", {}, {})["id"])
    _claim(ledger_conn, pipeline_settings, note_id)
    assert ledger.fail_attempt(ledger_conn, note_id, 1, "boom", max_attempts=3) == NoteStatus.QUEUED

    def claim() -> ledger.Claim | ledger.ClaimRefused:
        return ledger.claim(
            ledger_conn,
            note_id,
            worker="w",
            job_id="j",
            lease_ttl=5,
            max_attempts=3,
            retry_intervals=(0.5,),
        )

    early = claim()
    assert isinstance(early, ledger.ClaimRefused)
    assert "not due" in early.reason
    claimed = wait_until(
        lambda: isinstance(c := claim(), ledger.Claim) and c, 10, describe="the retry to be due"
    )
    assert claimed.attempt == 2
    events = ledger.get_events(ledger_conn, note_id)
    gap = (events[-1]["at"] - events[-2]["at"]).total_seconds()
    assert gap >= 0.5
