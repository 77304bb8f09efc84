"""A realistic synthetic run for the report tests: a valid scenario and an invalid one.

Both are built with the checker's own builder (``tests.checker.checker_synth``) and
judged by the real :func:`harness.checker.check`. The invalid scenario has a note
lost (accepted, absent from the ledger), a note completed twice, and a note that
failed early with an error string carrying a ``<script>`` tag.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from harness.checker import History, check
from harness.faults import Effect, FaultSpec
from harness.record import ScenarioRecord
from harness.report.model import RunInfo
from harness.schedule import FaultRecord, Schedule
from tests.checker.checker_synth import T0, Builder, Fractions, Params

P = Params(max_attempts=3, retry_intervals=(1.0, 2.0), job_timeout=5.0)
EVIL = '<script>alert("pwned")</script> & friends'
LOST_NOTE, DUP_NOTE, EVIL_NOTE = 103, 105, 107


def client_ops(history: History) -> list[dict[str, Any]]:
    """A Jepsen-style client history: an invoke and an ok per accepted note."""
    ops: list[dict[str, Any]] = []
    for note_id, at in sorted(history.accepted.items()):
        invoked = at - timedelta(milliseconds=4)
        ops.append({"type": "invoke", "f": "post", "note_id": None, "time": invoked.isoformat()})
        ops.append(
            {
                "type": "ok",
                "f": "post",
                "note_id": note_id,
                "time": at.isoformat(),
                "status_code": 201,
                "error": None,
            }
        )
    return ops


def _build(first_id: int, plans: list[list[str]], start: datetime) -> History:
    builder = Builder(P)
    fr = Fractions([0.1, 0.7, 0.3, 0.9, 0.5, 0.2])
    for i, plan in enumerate(plans):
        builder.note(first_id + i, plan, start + timedelta(seconds=0.4 * i), fr)
    return builder.history()


def fault(kind: str, target: str, start: datetime, end: datetime) -> FaultRecord:
    """A fault as it ran, that hit its target."""
    spec = FaultSpec(kind, at=0.0, duration=(end - start).total_seconds(), target=target)
    return FaultRecord(spec, target, start, end, effect=Effect(hit=True, summary=f"hit {target}"))


def record(
    name: str,
    history: History,
    faults: list[FaultRecord],
    start: datetime,
    *,
    outcome: str = "passed",
) -> ScenarioRecord:
    windows = tuple(f.window() for f in faults)
    history = replace(history, faults=(*history.faults, *windows))  # kills the plans made, too
    result = check(history, P.config())
    return ScenarioRecord(
        name=name,
        nodeid=f"scenarios/test_synth.py::{name}",
        started_at=start - timedelta(seconds=1),
        finished_at=history.observed_at,
        schedule=Schedule([], seed=1234),
        faults=faults,
        history=history,
        result=result,
        client_ops=client_ops(history),
        figures={
            "notes_posted": len(history.accepted),
            "client_ops": {"ok": len(history.accepted)},
        },
        outcome=outcome,
    )


def valid_scenario() -> ScenarioRecord:
    plans = [
        ["ok"],
        ["error", "ok"],
        ["kill", "ok"],
        ["ok"],
        ["error"] * 3,
        ["ok"],
        ["timeout"] * 3,
    ]
    plans += [["ok"]] * 8
    history = _build(1, plans, T0)
    faults = [fault("kill", "worker-1", T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))]
    return record("test_worker_sigkill", history, faults, T0)


def invalid_scenario() -> ScenarioRecord:
    start = T0 + timedelta(minutes=2)
    plans = [["ok"], ["error", "ok"], ["ok"], ["ok"], ["ok"], ["ok"], ["fail"], ["ok"]]
    history = _build(101, plans, start)
    # note 103: accepted by the client, never reached the ledger
    events = [e for e in history.events if e.note_id != LOST_NOTE]
    notes = [n for n in history.notes if n.id != LOST_NOTE]
    # note 105: completed twice
    done = next(e for e in events if e.note_id == DUP_NOTE and e.to_status == "completed")
    events.append(replace(done, at=done.at + timedelta(seconds=1), worker="w9"))
    # note 107: failed early, with an error a user could have written
    events = [
        replace(e, error=EVIL) if e.note_id == EVIL_NOTE and e.to_status == "failed" else e
        for e in events
    ]
    notes = [replace(n, last_error=EVIL) if n.id == EVIL_NOTE else n for n in notes]
    history = replace(history, notes=tuple(notes), events=tuple(events))
    faults = [
        fault("partition", "redis", start + timedelta(seconds=0.5), start + timedelta(seconds=2)),
        fault("latency", "postgres", start + timedelta(seconds=1), start + timedelta(seconds=4)),
    ]
    return record("test_network_partition", history, faults, start, outcome="failed")


def run_info(run_id: str = "20250101T120000Z-42") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        started_at=T0 - timedelta(seconds=5),
        finished_at=datetime(2025, 1, 1, 12, 3, tzinfo=UTC),
        backend="local",
        service_versions={"redis": "7.2.4", "postgres": "16.3"},
        settings={"database_url": "postgresql://np:***@127.0.0.1/np", "max_attempts": 3},
        command="pytest scenarios -p notepipe",
        host="ci-runner",
        python="3.11.9",
        notepipe_version="0.1.0",
    )
