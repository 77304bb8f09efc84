"""What the run's history says about a fault, after the run (the ``confirm`` step).

Read from the :class:`~harness.checker.History` the checker judges: the ledger's events
(with their structured ``cause``), the spans and the client's operations. An attempt
"finished by itself" when the event that ended it has a cause its own worker records
(``notepipe.models.SELF_ENDED_CAUSES``); ``lease_expired`` is the reconciler's recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from harness.checker import History, LedgerEvent
from notepipe.models import SELF_ENDED_CAUSES

if TYPE_CHECKING:
    from harness.record import ScenarioRecord

TERMINAL = ("completed", "failed")
#: Errors show up a little after the window closes (timeouts, retries, exporters).
WINDOW_SLACK = timedelta(seconds=1.0)


def attempt_end(history: History, note_id: int, attempt: int) -> LedgerEvent | None:
    """The event that ended ``attempt`` of the note (its first transition out of
    ``processing``), or ``None`` if the attempt never ended."""
    for event in history.events:
        if (
            event.note_id == note_id
            and event.attempt == attempt
            and event.from_status == "processing"
        ):
            return event
    return None


def finished_by_itself(event: LedgerEvent | None) -> bool:
    return event is not None and event.cause in SELF_ENDED_CAUSES


def final_status(history: History, note_id: int) -> str | None:
    return next((n.status for n in history.notes if n.id == note_id), None)


def claimed_after(history: History, note_id: int, after: datetime) -> list[int]:
    """Attempts of the note claimed (``→ processing``) after ``after``."""
    return [
        e.attempt
        for e in history.events
        if e.note_id == note_id and e.to_status == "processing" and e.at > after
    ]


def fate_of_attempts(
    history: History, attempts: Iterable[Mapping[str, Any]]
) -> dict[str, list[int]]:
    """Each ``{"note": id, "attempt": k}`` hit by a fault: did the attempt finish by itself
    (``finished``), or was it taken over and the note ended anyway — by a later attempt
    (``recovered``) or by the reconciler giving up on its budget (``gave_up``) — or is the
    note still not terminal (``unresolved``)?"""
    fate: dict[str, list[int]] = {"finished": [], "recovered": [], "gave_up": [], "unresolved": []}
    for item in attempts:
        note, attempt = int(item["note"]), int(item["attempt"])
        later = any(
            e.note_id == note and e.to_status == "processing" and e.attempt > attempt
            for e in history.events
        )
        if finished_by_itself(attempt_end(history, note, attempt)):
            fate["finished"].append(note)
        elif final_status(history, note) not in TERMINAL:
            fate["unresolved"].append(note)
        else:
            fate["recovered" if later else "gave_up"].append(note)
    return fate


def _op_time(op: Mapping[str, Any]) -> datetime | None:
    """When a client operation happened (ISO text in a record, a datetime while running)."""
    at = op.get("time")
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return when if isinstance(when, datetime) else None


def errors_in_window(
    history: History, client_ops: Sequence[Mapping[str, Any]], start: datetime, end: datetime
) -> dict[str, int]:
    """Errors the pipeline and its client saw from ``start`` to ``end`` (+ a little slack):
    spans with an error status, ledger events with an error, client posts refused (``fail``),
    unanswered (``info``) or answered ``202`` (accepted but not enqueued)."""
    hi = end + WINDOW_SLACK
    lo_ns, hi_ns = int(start.timestamp() * 1e9), int(hi.timestamp() * 1e9)
    spans = sum(
        1
        for s in history.spans
        if s.status == "ERROR" and s.start_ns <= hi_ns and s.end_ns >= lo_ns
    )
    ledger = sum(1 for e in history.events if e.error and start <= e.at <= hi)
    client = 0
    for op in client_ops:
        when = _op_time(op)
        if when is None or not start <= when <= hi:
            continue
        if op.get("type") in ("fail", "info") or (
            op.get("type") == "ok" and op.get("status_code") == 202
        ):
            client += 1
    return {"spans": spans, "ledger": ledger, "client": client, "total": spans + ledger + client}


def client_stall_s(
    client_ops: Sequence[Mapping[str, Any]], start: datetime, end: datetime
) -> float:
    """The longest time, overlapping ``start`` .. ``end``, that the client had requests
    outstanding and none of them was answered (an ``ok``, ``fail`` or ``info``).

    A fault can bite without an error: behind a pooler (PgBouncer) a request waits for
    PostgreSQL to come back instead of failing, and the proof is that the client stalled
    through the outage. With a steady load outside faults this stays near the time
    between two requests."""
    events = []
    for op in client_ops:
        when = _op_time(op)
        if when is not None and op.get("type") in ("invoke", "ok", "fail", "info"):
            events.append((when, op["type"] == "invoke"))
    events.sort(key=lambda e: e[0])
    longest, outstanding, quiet_since = 0.0, 0, None
    for when, invoke in events:
        if invoke:
            outstanding += 1
            if quiet_since is None:
                quiet_since = when
            continue
        if quiet_since is not None and when >= start and quiet_since <= end:
            longest = max(longest, (when - quiet_since).total_seconds())
        outstanding = max(0, outstanding - 1)
        quiet_since = when if outstanding else None
    return longest


#: Network faults that must make the pipeline (or its client) see errors in their window.
DISRUPTIVE = ("proxy_down", "reset_peer", "timeout")


def assert_network_faults_bit(outcome: ScenarioRecord) -> None:
    """For a scenario of network faults: each fault's probe showed it, and the cut, reset
    and black-holed windows show errors on the pipeline's side."""
    for record in outcome.faults:
        evidence = record.effect.evidence
        assert record.effect.hit and "probe" in evidence, record
        kind = record.spec.params.get("type", record.spec.kind)
        if kind in DISRUPTIVE:
            assert evidence["errors_in_window"]["total"] > 0, (kind, record.effect)
