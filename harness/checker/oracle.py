"""The deadline oracle: when each note must be terminal, from promises fixed before the run.

Per note ``i`` (accepted at ``a_i``)::

    deadline_i = start_i + time_to_terminal(settings) + backlog_i + downtime_i

* ``start_i``: ``a_i``, or the end of the last fault window that overlaps the
  note's life (a window that began before the note was terminal, and before its
  deadline so far);
* ``backlog_i = Σ budget_j / workers`` over the notes ``j`` accepted before ``i``
  and not yet terminal at ``a_i`` (the notes ahead), with
  ``budget_j = service_budget_s + demand_j``: the per-note service-time budget
  (a setting, or calibrated once per test session before any scenario) plus the
  worker-seconds ``j``'s content asks for (chaos sleeps, attempts it must fail);
* ``downtime_i``: the summed length of those overlapping fault windows (merged).

Nothing here is measured from the judged run's speed: a pipeline that drains
slower than its budget, or a note that waits behind a short backlog for longer
than ``time_to_terminal``, misses its deadline.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from harness.checker.expectations import Expectation
from harness.checker.history import CheckConfig, FaultWindow
from harness.checker.timeline import NoteTimeline


@dataclass(frozen=True)
class NoteDeadline:
    note_id: int
    accepted_at: datetime
    start: datetime  # acceptance, or the end of the last fault window overlapping its life
    deadline: datetime
    ahead: int  # notes accepted earlier and not terminal at acceptance
    backlog_s: float
    downtime_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "note_id": self.note_id,
            "start": self.start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "ahead": self.ahead,
            "backlog_s": round(self.backlog_s, 3),
            "downtime_s": round(self.downtime_s, 3),
        }


def merge_windows(faults: Iterable[FaultWindow]) -> list[tuple[datetime, datetime]]:
    """Fault windows as disjoint intervals, in time order."""
    merged: list[tuple[datetime, datetime]] = []
    for f in sorted(faults, key=lambda f: f.start):
        if merged and f.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], f.end))
        else:
            merged.append((f.start, f.end))
    return merged


def note_budget_s(timeline: NoteTimeline, config: CheckConfig) -> float:
    """The service time one worker may spend on this note."""
    content = timeline.note.content if timeline.note is not None else None
    demand = Expectation.of(content).demand_s(config.job_timeout, config.max_attempts)
    return config.service_budget_s + demand


def note_deadlines(
    timelines: Iterable[NoteTimeline],
    config: CheckConfig,
    faults: Iterable[FaultWindow],
    observed_at: datetime,
) -> dict[int, NoteDeadline]:
    """Every note's deadline (notes without an acceptance or creation time have none)."""
    notes = sorted(
        (t for t in timelines if t.start_at is not None),
        key=lambda t: (t.start_at, t.note_id),
    )
    windows = merge_windows(faults)
    budgets = [note_budget_s(t, config) for t in notes]
    # Terminal notes by terminal time, with prefix sums of their budgets.
    done = sorted(
        (t.terminal_event.at, b)
        for t, b in zip(notes, budgets, strict=True)
        if t.terminal_event is not None
    )
    done_at = [at for at, _ in done]
    done_budget = [0.0]
    for _, b in done:
        done_budget.append(done_budget[-1] + b)
    workers = max(1, config.workers)
    base = timedelta(seconds=config.deadline_s)
    out: dict[int, NoteDeadline] = {}
    budget_before = 0.0
    for index, (t, budget) in enumerate(zip(notes, budgets, strict=True)):
        accepted = t.start_at
        assert accepted is not None
        finished = bisect.bisect_right(done_at, accepted)
        ahead = index - finished
        backlog = max(0.0, budget_before - done_budget[finished]) / workers
        budget_before += budget
        terminal = t.terminal_event
        life_end = terminal.at if terminal is not None else observed_at
        start, downtime = accepted, 0.0
        deadline = start + base + timedelta(seconds=backlog)
        for w_start, w_end in windows:
            if w_end <= accepted:
                continue
            if w_start >= min(life_end, deadline):
                break
            downtime += (w_end - w_start).total_seconds()
            start = max(start, w_end)
            deadline = start + base + timedelta(seconds=backlog + downtime)
        out[t.note_id] = NoteDeadline(
            t.note_id, accepted, start, deadline, max(0, ahead), backlog, downtime
        )
    return out


def margins(
    deadlines: Mapping[int, NoteDeadline],
    timelines: Mapping[int, NoteTimeline],
    observed_at: datetime,
) -> dict[int, float]:
    """Per note: deadline - terminal time (or - observation time while not terminal)."""
    out: dict[int, float] = {}
    for note_id, d in deadlines.items():
        t = timelines.get(note_id)
        terminal = t.terminal_event if t is not None else None
        end = terminal.at if terminal is not None else observed_at
        out[note_id] = (d.deadline - end).total_seconds()
    return out
