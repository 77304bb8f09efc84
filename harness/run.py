"""One scenario run: load and faults on the same timeline → quiescence → history → verdict.

Jepsen's shape: the client history (``invoke``/``ok``/``fail``/``info``), the fault
windows and the ledger are gathered into a :class:`History` and judged by the
checker once every fault has healed and the pipeline has gone quiet.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.checker import CheckConfig, CheckResult, FaultWindow, History, check
from harness.faults.proof import confirm_faults, prove_faults
from harness.load import ClientHistory, LoadSpec, run_load
from harness.progress import RunProgress
from harness.schedule import FaultRecord, Schedule, ScheduleRunner
from harness.stack import PipelineStack
from harness.tracing import HarnessTracing
from notepipe.deadlines import time_to_terminal

#: Allowance on top of time_to_terminal for the quiescence wait (process start-up, load).
QUIESCENCE_SLACK_S = 15.0
#: The slowest drain (notes/s) the quiescence wait allows for before giving up.
MIN_DRAIN_RATE = 2.0


def backlog_allowances(history: History) -> dict[int, float]:
    """Per note: how long it may wait behind the notes ahead of it in the queue.

    ``time_to_terminal`` assumes a free worker. A note accepted while ``k`` earlier
    notes were still in flight waits for them first: ``k / rate`` seconds, with the
    rate this run achieved (terminal notes per second, first acceptance to last
    terminal status; fault downtime lowers it). Measured in the run, so a slower
    machine (or ``-n 2``) gets a proportionally larger allowance; a stuck note is
    still caught, and so is a note that waits longer than its backlog explains.
    """
    notes = sorted(history.notes, key=lambda n: n.created_at)
    done = sorted(n.completed_at for n in notes if n.completed_at is not None)
    if len(done) < 2:
        return {}
    span = (done[-1] - notes[0].created_at).total_seconds()
    if span <= 0:
        return {}
    rate = len(done) / span
    allowances: dict[int, float] = {}
    finished = 0
    for index, note in enumerate(notes):
        while finished < len(done) and done[finished] <= note.created_at:
            finished += 1
        in_flight_ahead = index - finished
        allowances[note.id] = max(0, in_flight_ahead) / rate
    return allowances


@dataclass
class RunOutcome:
    """Everything a scenario produced; ``result`` is the checker's verdict."""

    name: str
    started_at: datetime
    finished_at: datetime
    schedule: Schedule
    faults: list[FaultRecord]
    client_ops: list[dict[str, Any]]
    accepted: dict[int, datetime]
    history: History
    result: CheckResult
    leftover: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def windows(self) -> tuple[FaultWindow, ...]:
        return tuple(r.window() for r in self.faults)

    def explain(self) -> str:
        """A failure message: verdict, reasons, leftovers and fault errors."""
        lines = [f"{self.name}: verdict {self.result.verdict}"]
        lines += [f"  - {reason}" for reason in self.result.reasons[:20]]
        if self.leftover:
            lines.append(f"  not quiescent at the deadline: {self.leftover}")
        lines += [f"  fault {r.spec.kind} missed: {r.missed}" for r in self.faults if r.missed]
        return "\n".join(lines)


class ScenarioRun:
    def __init__(
        self,
        stack: PipelineStack,
        *,
        name: str,
        tracing: HarnessTracing | None = None,
        on_finish: Callable[[RunOutcome], None] | None = None,
        tolerance_s: float = 1.5,
        progress: RunProgress | None = None,
    ) -> None:
        self.stack = stack
        self.name = name
        self.tracing = tracing
        self.on_finish = on_finish
        self.tolerance_s = tolerance_s
        self.progress = progress or RunProgress(name, enabled=False, live=False)

    @property
    def deadline_s(self) -> float:
        assert self.stack.settings is not None
        return time_to_terminal(self.stack.settings)

    def execute(
        self,
        load: LoadSpec,
        schedule: Schedule | None = None,
        *,
        during: Callable[[ClientHistory], None] | None = None,
        figures: dict[str, Any] | None = None,
        analyze: Callable[[RunOutcome], dict[str, Any]] | None = None,
    ) -> RunOutcome:
        """Drive ``load`` while ``schedule`` injects faults (and ``during`` acts, if given),
        heal everything, wait for quiescence, and check the history."""
        assert self.stack.api is not None and self.stack.api.url is not None
        schedule = schedule or Schedule([])
        client = ClientHistory()
        started = datetime.now(UTC)
        stop = threading.Event()
        load_thread = threading.Thread(
            target=run_load,
            args=(self.stack.api.url, load, client),
            kwargs={"stop": stop},
            daemon=True,
        )
        runner = ScheduleRunner(self.stack, schedule, tracing=self.tracing)
        load_started = time.monotonic()
        with self.progress:
            load_thread.start()
            runner.start()
            try:
                if during is not None:
                    during(client)
                deadline = time.monotonic() + load.notes / max(load.rate, 0.1) + schedule.end + 120
                while (load_thread.is_alive() or not runner.done()) and time.monotonic() < deadline:
                    counts = client.counts
                    self.progress.update(
                        f"load {counts.get('ok', 0)}/{load.notes} accepted, "
                        f"{counts.get('fail', 0) + counts.get('info', 0)} refused/unknown; "
                        f"faults {len(runner.records)}/{len(schedule.faults)} healed"
                    )
                    load_thread.join(timeout=0.5)
            finally:
                stop.set()
                runner.stop()
                load_thread.join(timeout=30)
            load_seconds = time.monotonic() - load_started
            healed_at = max((r.end for r in runner.records), default=datetime.now(UTC))
            self.progress.update("waiting for every note to reach a terminal status")
            drain_started = time.monotonic()
            leftover = self.stack.wait_quiescent(
                self.deadline_s + QUIESCENCE_SLACK_S + len(client.accepted) / MIN_DRAIN_RATE
            )
            drain_seconds = time.monotonic() - drain_started
            self.stack.flush_wait()
            flush_seconds = time.monotonic() - drain_started - drain_seconds
            self.progress.update("checking the history")
        records = list(runner.records)
        history = self.stack.history(accepted=client.accepted)
        confirm_faults(records, history, client.ops)  # each fault: what the history shows
        history = dataclasses.replace(history, faults=tuple(r.window() for r in records))
        assert self.stack.settings is not None
        backlog = backlog_allowances(history)
        config = dataclasses.replace(
            CheckConfig.from_settings(self.stack.settings, deadline_s=self.deadline_s),
            backlog_s=backlog,
            tolerance_s=self.tolerance_s,
            healed_at=healed_at,
        )
        result = prove_faults(check(history, config), records, schedule.faults)  # missed: unknown
        outcome = RunOutcome(
            name=self.name,
            started_at=started,
            finished_at=datetime.now(UTC),
            schedule=schedule,
            faults=records,
            client_ops=list(client.ops),
            accepted=dict(client.accepted),
            history=history,
            result=result,
            leftover=leftover,
            settings=self.stack.settings.redacted(),
            figures={
                "notes_posted": load.notes,
                "accepted": len(client.accepted),
                "client_ops": client.counts,
                "load_seconds": round(load_seconds, 2),
                # where a run's time goes after the load: the drain (quiescence) and the
                # wait for span export to settle
                "drain_seconds": round(drain_seconds, 2),
                "flush_seconds": round(flush_seconds, 2),
                "stack_start_seconds": round(self.stack.start_seconds, 2),
                "deadline_s": round(self.deadline_s, 1),
                "backlog_allowance_max_s": round(max(backlog.values(), default=0.0), 1),
                **(figures or {}),
            },
        )
        if analyze is not None:
            outcome.figures.update(analyze(outcome))
        if self.on_finish is not None:
            self.on_finish(outcome)
        return outcome
