"""The per-note service-time budget of the deadline oracle, fixed before any scenario runs.

Either given (``--notepipe-service-budget SECONDS``), or measured once per test
session, before the first scenario, on the machine as it is then (other load
included): a fresh stack of :data:`CALIBRATION_WORKERS` workers drains a burst of
:data:`CALIBRATION_NOTES` plain notes; the seconds one worker spent per note are
``drain time * workers / notes`` (first claim to last completion, on the ledger's
clock), and the budget is :data:`BUDGET_FACTOR` times that, at least
:data:`BUDGET_FLOOR_S`. The judged runs never feed it.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from harness.errors import HarnessError
from harness.load import ClientHistory, LoadSpec, run_load
from harness.stack import PipelineStack

#: Used when nothing else is given (e.g. a ScenarioRun built by hand): generous.
DEFAULT_SERVICE_BUDGET_S = 0.25
CALIBRATION_NOTES = 40
CALIBRATION_WORKERS = 3
#: Headroom over the measured service time (the machine's load varies during a session).
BUDGET_FACTOR = 2.0
BUDGET_FLOOR_S = 0.02


class CalibrationError(HarnessError):
    """The calibration run could not measure a service time."""


@dataclass(frozen=True)
class Calibration:
    budget_s: float
    source: str  # "option" or "calibrated"
    per_note_s: float | None = None
    notes: int = 0
    workers: int = 0
    drain_s: float | None = None

    @classmethod
    def given(cls, seconds: float) -> Calibration:
        if seconds < 0:
            raise ValueError(f"the service budget must be >= 0 seconds, got {seconds}")
        return cls(budget_s=seconds, source="option")

    def describe(self) -> str:
        if self.source == "option":
            return f"service budget {self.budget_s:.3f}s per note (--notepipe-service-budget)"
        return (
            f"service budget {self.budget_s:.3f}s per note = {BUDGET_FACTOR:g} x "
            f"{self.per_note_s:.3f}s measured ({self.notes} notes on {self.workers} workers "
            f"drained in {self.drain_s:.2f}s at session start)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "factor": BUDGET_FACTOR}


def calibrate(stack: PipelineStack, *, notes: int = CALIBRATION_NOTES) -> Calibration:
    """Drain ``notes`` plain notes through ``stack`` (started) and derive the budget."""
    assert stack.api is not None and stack.api.url is not None and stack.direct_settings is not None
    client = ClientHistory()
    loader = threading.Thread(
        target=run_load,
        args=(stack.api.url, LoadSpec(notes=notes, rate=1000.0, concurrency=8), client),
        daemon=True,
    )
    loader.start()
    loader.join(timeout=60)
    leftover = stack.observer.wait_quiescent(60)
    if leftover or len(client.accepted) < notes:
        raise CalibrationError(
            f"the calibration stack did not drain {notes} notes within 60 s "
            f"(accepted {len(client.accepted)}, left {leftover}); check the stack's logs in "
            f"{stack.log_dir}, or give --notepipe-service-budget SECONDS"
        )
    with psycopg.connect(stack.direct_settings.database_dsn, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT min(at) FILTER (WHERE to_status = 'processing'),"
            " max(at) FILTER (WHERE to_status = 'completed'),"
            " count(*) FILTER (WHERE to_status = 'completed') FROM note_events"
        ).fetchone()
    if row is None or row[0] is None or row[1] is None or row[2] != notes:
        raise CalibrationError(f"the calibration ledger is incomplete: {row}")
    drain = max((row[1] - row[0]).total_seconds(), 1e-3)
    workers = stack.options.workers
    per_note = drain * workers / notes
    return Calibration(
        budget_s=max(BUDGET_FLOOR_S, BUDGET_FACTOR * per_note),
        source="calibrated",
        per_note_s=per_note,
        notes=notes,
        workers=workers,
        drain_s=drain,
    )


__all__ = [
    "BUDGET_FACTOR",
    "CALIBRATION_NOTES",
    "DEFAULT_SERVICE_BUDGET_S",
    "Calibration",
    "CalibrationError",
    "calibrate",
]
