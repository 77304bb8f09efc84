"""Numbers the report derives from a scenario: latency quantiles, throughput, flagged notes."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from harness.checker.context import Violation
from harness.checker.history import COMPLETED, FAILED, TERMINAL, History
from harness.record import ScenarioRecord

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("max", 1.00),
)
#: Throughput bin widths to choose from (seconds); the smallest giving <= MAX_BINS wins.
BIN_WIDTHS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
MAX_BINS = 240


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), to 0.1 %."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    if len(sorted_values) == 1 or q <= 0:
        return sorted_values[0]
    if q >= 1:
        return max(sorted_values)
    cuts = statistics.quantiles(sorted_values, n=1000, method="inclusive")
    return cuts[round(q * 1000) - 1]


def terminal_times(history: History) -> dict[int, datetime]:
    """When each note first reached a terminal status (ledger events; else ``completed_at``)."""
    found: dict[int, datetime] = {}
    for event in sorted(history.events, key=lambda e: e.at):
        if event.to_status in TERMINAL and event.note_id not in found:
            found[event.note_id] = event.at
    for note in history.notes:
        if note.id not in found and note.completed_at is not None:
            found[note.id] = note.completed_at
    return found


@dataclass(frozen=True)
class Latency:
    """End-to-end latency, ledger ``created_at`` -> first terminal status, in seconds."""

    count: int
    quantiles: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, **{k: round(v, 6) for k, v in self.quantiles.items()}}


def latency(history: History) -> Latency:
    ends = terminal_times(history)
    values = sorted(
        max((ends[n.id] - n.created_at).total_seconds(), 0.0) for n in history.notes if n.id in ends
    )
    if not values:
        return Latency(0, {})
    return Latency(len(values), {name: quantile(values, q) for name, q in QUANTILES})


@dataclass(frozen=True)
class Throughput:
    """Per-bin rates (per second) from ``start``; ``series`` maps a name to its rates."""

    start: datetime
    end: datetime
    bin_s: float
    series: dict[str, list[float]] = field(default_factory=dict)

    @property
    def bins(self) -> int:
        return max(len(v) for v in self.series.values()) if self.series else 0


def pick_bin(span_s: float) -> float:
    for width in BIN_WIDTHS:
        if span_s / width <= MAX_BINS:
            return width
    return math.ceil(span_s / MAX_BINS)


def _client_ok_posts(record: ScenarioRecord) -> list[datetime]:
    times = []
    for op in record.client_ops:
        if op.get("type") == "ok" and op.get("f", "post") == "post" and op.get("time"):
            times.append(datetime.fromisoformat(str(op["time"])))
    return times


def throughput(record: ScenarioRecord) -> Throughput:
    """Completions, failures and client-accepted posts per second over the scenario."""
    events = record.history.events
    raw = {
        "completed": [e.at for e in events if e.to_status == COMPLETED],
        "failed": [e.at for e in events if e.to_status == FAILED],
        "accepted": _client_ok_posts(record),
    }
    every = [t for times in raw.values() for t in times]
    start = min([record.started_at, *every])
    end = max([record.finished_at, *every])
    if end <= start:
        end = start + timedelta(seconds=1)
    span_s = (end - start).total_seconds()
    bin_s = pick_bin(span_s)
    n = max(math.ceil(span_s / bin_s), 1)
    series: dict[str, list[float]] = {}
    for name, times in raw.items():
        counts = [0] * n
        for t in times:
            counts[min(int((t - start).total_seconds() / bin_s), n - 1)] += 1
        series[name] = [c / bin_s for c in counts]
    return Throughput(start, end, bin_s, series)


@dataclass(frozen=True)
class FlaggedNote:
    """A note that broke at least one invariant, with everything the page shows about it."""

    note_id: int
    note_class: str
    reason: str
    status: str | None
    attempts: int
    last_error: str | None
    trace_ids: tuple[str, ...]
    violations: tuple[Violation, ...]


def flagged_notes(record: ScenarioRecord) -> list[FlaggedNote]:
    """Notes named by a violation, in the order the checker reported them."""
    by_note: dict[int, list[Violation]] = {}
    for violation in record.result.violations:
        if violation.note_id is not None:
            by_note.setdefault(violation.note_id, []).append(violation)
    notes = {n.id: n for n in record.history.notes}
    flagged = []
    for note_id, violations in by_note.items():
        c = record.result.classifications.get(note_id)
        note = notes.get(note_id)
        traces = set(c.trace_ids if c else ())
        traces.update(t for v in violations for t in v.trace_ids)
        if note is not None and note.trace_id:
            traces.add(note.trace_id)
        flagged.append(
            FlaggedNote(
                note_id=note_id,
                note_class=c.note_class.value if c else "unclassified",
                reason=c.reason if c else "",
                status=note.status if note else None,
                attempts=c.attempts if c else 0,
                last_error=note.last_error if note else None,
                trace_ids=tuple(sorted(traces)),
                violations=tuple(violations),
            )
        )
    return flagged
