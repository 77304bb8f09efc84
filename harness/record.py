"""One scenario's record: what :meth:`harness.run.ScenarioRun.execute` returns, what the
plugin stores for the run report, and what the report shows.

The run fills everything but pytest's view of the test (``nodeid``, ``outcome``): the
plugin adds the node id when it stores the record, the report the test's outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.checker import CheckResult, FaultWindow, History
from harness.schedule import FaultRecord, Schedule
from harness.spans import SpanRecord


def client_ops(ops: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The load's operations in the record's shape (see :class:`ScenarioRecord`)."""
    return [
        {
            "type": op["type"],
            "f": op.get("f", "post"),
            "note_id": op.get("note_id"),
            "time": op["time"],
            "status_code": op.get("status_code"),
            "error": op.get("error"),
        }
        for op in ops
    ]


@dataclass
class ScenarioRecord:
    """Everything a scenario produced; ``result`` is the checker's verdict.

    ``faults`` are the schedule's faults as they ran (real start and end, what each hit);
    ``client_ops`` items look like ``{"type": "invoke"|"ok"|"fail"|"info",
    "f": "post"|"poll", "note_id": int | None, "time": iso str,
    "status_code": int | None, "error": str | None}``; ``leftover`` is what was still
    pending when the quiescence wait gave up (empty: the pipeline went quiet).
    ``figures`` are free-form numbers the scenario measured (nested dicts allowed);
    ``settings`` the stack's, redacted. ``nodeid`` and ``outcome`` are pytest's (the test's
    node id and ``passed`` / ``failed`` / ``error``), filled in for the report.
    """

    name: str
    started_at: datetime
    finished_at: datetime
    schedule: Schedule
    faults: list[FaultRecord]
    history: History
    result: CheckResult
    client_ops: list[dict[str, Any]] = field(default_factory=list)
    leftover: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    nodeid: str = ""
    outcome: str = "unknown"

    @property
    def windows(self) -> tuple[FaultWindow, ...]:
        return tuple(r.window() for r in self.faults)

    @property
    def seed(self) -> int | None:
        return self.schedule.seed

    @property
    def spans(self) -> tuple[SpanRecord, ...]:
        return self.history.spans

    @property
    def accepted(self) -> Mapping[int, datetime]:
        """Note id → when the API accepted it (the client's ``ok``)."""
        return self.history.accepted

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def anchor(self) -> str:
        """An HTML id for this scenario's section."""
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name)
        return f"scenario-{safe}"

    def explain(self) -> str:
        """A failure message: verdict, reasons, leftovers and fault errors."""
        lines = [f"{self.name}: verdict {self.result.verdict}"]
        lines += [f"  - {reason}" for reason in self.result.reasons[:20]]
        if self.leftover:
            lines.append(f"  not quiescent at the deadline: {self.leftover}")
        lines += [f"  fault {r.spec.kind} missed: {r.missed}" for r in self.faults if r.missed]
        return "\n".join(lines)
