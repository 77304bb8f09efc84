"""Figures scenarios measure from a run's ledger history (e.g. recovery time after a kill)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from harness.checker import LedgerEvent
from harness.record import ScenarioRecord
from notepipe.contracts.rq import worker_matches


def _events_by_note(outcome: ScenarioRecord) -> dict[int, list[LedgerEvent]]:
    grouped: dict[int, list[LedgerEvent]] = defaultdict(list)
    for event in outcome.history.events:
        grouped[event.note_id].append(event)
    for events in grouped.values():
        events.sort(key=lambda e: e.at)
    return grouped


def recovery_after_kills(outcome: ScenarioRecord, worker_pids: dict[str, int]) -> dict[str, Any]:
    """Seconds from each worker fault to the next attempt of a note that worker held.

    ``worker_pids`` maps a fault target (``worker-N``) to its pid (see
    :meth:`harness.stack.PipelineStack.worker_pids`).
    """
    by_note = _events_by_note(outcome)
    delays: list[float] = []
    for record in outcome.faults:
        pid = worker_pids.get(record.target)
        if pid is None:
            continue
        for events in by_note.values():
            held = [
                e
                for e in events
                if e.to_status == "processing"
                and worker_matches(e.worker, pid)
                and e.at <= record.start
            ]
            if not held:
                continue
            attempt = held[-1].attempt
            ended = [e for e in events if e.from_status == "processing" and e.attempt == attempt]
            if not ended or ended[0].at < record.start:
                continue  # that attempt ended before the fault
            nxt = [e for e in events if e.to_status == "processing" and e.attempt == attempt + 1]
            if nxt:
                delays.append((nxt[0].at - record.start).total_seconds())
    if not delays:
        return {"recovery_samples": 0}
    return {
        "recovery_samples": len(delays),
        "recovery_median_s": round(statistics.median(delays), 2),
        "recovery_max_s": round(max(delays), 2),
    }


def attempt_durations(outcome: ScenarioRecord) -> list[float]:
    durations: list[float] = []
    for events in _events_by_note(outcome).values():
        starts = {e.attempt: e.at for e in events if e.to_status == "processing"}
        for e in events:
            if e.from_status == "processing" and e.attempt in starts:
                durations.append((e.at - starts[e.attempt]).total_seconds())
    return durations
