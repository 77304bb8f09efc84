"""What a run report is made of: one :class:`RunInfo` and a
:class:`~harness.record.ScenarioRecord` per scenario.

A pytest session of scenarios is one *run*; every scenario in it leaves a record
with its fault schedule, the checker's input (:class:`~harness.checker.History`)
and verdict (:class:`~harness.checker.CheckResult`), the spans, and the client's
Jepsen-style history of operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.checker.verdict import Verdict

#: Worst first: a run is as bad as its worst scenario.
VERDICT_ORDER: tuple[Verdict, ...] = ("invalid", "unknown", "valid")


@dataclass
class RunInfo:
    """The run: where, when, against what. ``settings`` must already be redacted."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    backend: str  # local | testcontainers | external
    service_versions: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    host: str = ""
    python: str = ""
    notepipe_version: str = ""

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "backend": self.backend,
            "service_versions": dict(self.service_versions),
            "settings": self.settings,
            "command": self.command,
            "host": self.host,
            "python": self.python,
            "notepipe_version": self.notepipe_version,
        }


def worst_verdict(verdicts: list[Verdict]) -> Verdict:
    """``invalid`` > ``unknown`` > ``valid``; no scenarios at all is ``unknown``."""
    for verdict in VERDICT_ORDER[:-1]:
        if verdict in verdicts:
            return verdict
    return "valid" if verdicts else "unknown"
