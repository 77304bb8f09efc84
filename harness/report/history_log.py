"""``history.jsonl``: every scenario's client ops, ledger events and fault windows on one
timeline, one JSON object per line, sorted by time (Jepsen's history, re-analysable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.record import ScenarioRecord

#: Within one instant: faults first (they explain what follows), then the client, then the ledger.
_KIND_ORDER = {"fault": 0, "client": 1, "ledger": 2}


def utc(at: datetime) -> datetime:
    """Aware UTC (a naive time is taken to be UTC already)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def iso(at: datetime) -> str:
    """Fixed-width UTC ISO 8601 (microseconds always present), so text order is time order."""
    return utc(at).isoformat(timespec="microseconds")


def scenario_rows(record: ScenarioRecord) -> Iterator[tuple[datetime, dict[str, Any]]]:
    for window in record.windows:
        yield (
            utc(window.start),
            {
                "kind": "fault",
                "fault": window.kind,
                "target": window.target,
                "time": iso(window.start),
                "end": iso(window.end),
                "duration_s": round((window.end - window.start).total_seconds(), 6),
            },
        )
    for op in record.client_ops:
        at = datetime.fromisoformat(str(op["time"]))
        yield utc(at), {**op, "kind": "client", "time": iso(at)}
    for event in record.history.events:
        yield (
            utc(event.at),
            {
                "kind": "ledger",
                "time": iso(event.at),
                "note_id": event.note_id,
                "from": event.from_status,
                "to": event.to_status,
                "attempt": event.attempt,
                "worker": event.worker,
                "job_id": event.job_id,
                "error": event.error,
                "cause": event.cause,
                "lease_until": iso(event.lease_until) if event.lease_until else None,
            },
        )


def history_rows(scenarios: list[ScenarioRecord]) -> list[dict[str, Any]]:
    """All rows of all scenarios, tagged with ``scenario`` and ``kind``, sorted by time."""
    keyed = []
    for index, record in enumerate(scenarios):
        for seq, (at, row) in enumerate(scenario_rows(record)):
            key = (at, index, _KIND_ORDER[row["kind"]], seq)
            keyed.append((key, {"scenario": record.name, **row, "kind": row["kind"]}))
    keyed.sort(key=lambda item: item[0])
    return [row for _, row in keyed]


def write_history_jsonl(scenarios: list[ScenarioRecord], path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in history_rows(scenarios):
            fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
