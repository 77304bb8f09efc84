"""One scenario run: load and faults on the same timeline → quiescence → history → verdict.

Jepsen's shape: the client history (``invoke``/``ok``/``fail``/``info``), the fault
windows and the ledger are gathered into a :class:`History` and judged by the
checker once every fault has healed and the pipeline has gone quiet.

:meth:`ScenarioRun.execute` takes three steps: *drive* (load and fault schedule, every
fault healed; :class:`Driven`), *drain* (quiescence, then the settled history, read by
the stack's :class:`~harness.observe.StackObserver`; :class:`Drained`) and *judge*
(each fault's proof, the checker's verdict and the figures; a
:class:`~harness.record.ScenarioRecord`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness.calibration import DEFAULT_SERVICE_BUDGET_S
from harness.checker import CheckConfig, CheckResult, History, check
from harness.fault_spans import HarnessTracing
from harness.faults.proof import confirm_faults, prove_faults
from harness.load import ClientHistory, LoadSpec, run_load
from harness.progress import RunProgress
from harness.record import ScenarioRecord, client_ops
from harness.schedule import FaultRecord, Schedule, ScheduleRunner
from harness.stack import PipelineStack
from notepipe.deadlines import time_to_terminal

#: Allowance on top of time_to_terminal for the quiescence wait (process start-up, load).
QUIESCENCE_SLACK_S = 15.0
#: The slowest drain (notes/s) the quiescence wait allows for before giving up.
MIN_DRAIN_RATE = 2.0


def _recovery_lag_max(history: History, lease_grace: float) -> float | None:
    """Seconds past ``lease_until + lease_grace`` of the slowest recovery (None: none)."""
    lags = [
        (e.at - e.lease_until).total_seconds() - lease_grace
        for e in history.events
        if e.cause == "lease_expired" and e.lease_until is not None
    ]
    return round(max(lags), 2) if lags else None


@dataclass(frozen=True)
class Driven:
    """What driving the load and the faults left: the client's history, each fault as it
    ran (healed), when the run started and how long the load took."""

    started_at: datetime
    client: ClientHistory
    faults: list[FaultRecord]
    load_seconds: float


@dataclass(frozen=True)
class Drained:
    """The pipeline after the drive: what was still pending when the quiescence wait gave
    up (empty: it went quiet), the settled history, and how long each wait took."""

    leftover: dict[str, int]
    history: History
    drain_seconds: float
    flush_seconds: float


class ScenarioRun:
    def __init__(
        self,
        stack: PipelineStack,
        *,
        name: str,
        tracing: HarnessTracing | None = None,
        on_finish: Callable[[ScenarioRecord], None] | None = None,
        tolerance_s: float = 1.5,
        progress: RunProgress | None = None,
        service_budget_s: float = DEFAULT_SERVICE_BUDGET_S,
    ) -> None:
        self.stack = stack
        self.name = name
        self.tracing = tracing
        self.on_finish = on_finish
        self.tolerance_s = tolerance_s
        self.service_budget_s = service_budget_s
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
        analyze: Callable[[ScenarioRecord], dict[str, Any]] | None = None,
    ) -> ScenarioRecord:
        """Drive ``load`` while ``schedule`` injects faults (and ``during`` acts, if given),
        heal everything, wait for quiescence, and check the history."""
        schedule = schedule or Schedule([])
        with self.progress:
            driven = self._drive(load, schedule, during)
            drained = self._drain(driven)
            self.progress.update("checking the history")
        record = self._judge(load, schedule, driven, drained)
        record.figures.update(figures or {})
        if analyze is not None:
            record.figures.update(analyze(record))
        if self.on_finish is not None:
            self.on_finish(record)
        return record

    def _drive(
        self,
        load: LoadSpec,
        schedule: Schedule,
        during: Callable[[ClientHistory], None] | None,
    ) -> Driven:
        """The load and the fault schedule on one timeline, until both are done (or their
        deadline passed); every fault is healed on the way out."""
        assert self.stack.api is not None and self.stack.api.url is not None
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
        return Driven(started, client, list(runner.records), time.monotonic() - load_started)

    def _drain(self, driven: Driven) -> Drained:
        """Wait until every note is terminal and Redis is empty, then for the trace witness."""
        observer = self.stack.observer
        self.progress.update("waiting for every note to reach a terminal status")
        drain_started = time.monotonic()
        accepted = driven.client.accepted
        leftover = observer.wait_quiescent(
            self.deadline_s + QUIESCENCE_SLACK_S + len(accepted) / MIN_DRAIN_RATE
        )
        drain_seconds = time.monotonic() - drain_started
        self.progress.update("waiting for the trace witness")
        history = observer.settled_history(
            accepted=accepted, faults=tuple(r.window() for r in driven.faults)
        )
        flush_seconds = time.monotonic() - drain_started - drain_seconds
        return Drained(leftover, history, drain_seconds, flush_seconds)

    def _judge(
        self, load: LoadSpec, schedule: Schedule, driven: Driven, drained: Drained
    ) -> ScenarioRecord:
        """Each fault's proof from the history, then the checker's verdict on it."""
        settings = self.stack.settings
        assert settings is not None
        faults = driven.faults
        ops = client_ops(driven.client.ops)
        confirm_faults(faults, drained.history, ops)  # each fault: what the history shows
        history = dataclasses.replace(drained.history, faults=tuple(r.window() for r in faults))
        config = CheckConfig.from_settings(
            settings,
            workers=self.stack.options.workers,
            service_budget_s=self.service_budget_s,
            tolerance_s=self.tolerance_s,
        )
        result = prove_faults(check(history, config), faults, schedule.faults)  # missed: unknown
        return ScenarioRecord(
            name=self.name,
            started_at=driven.started_at,
            finished_at=datetime.now(UTC),
            schedule=schedule,
            faults=faults,
            history=history,
            result=result,
            client_ops=ops,
            leftover=drained.leftover,
            settings=settings.redacted(),
            figures=self._figures(load, driven, drained, result, settings.lease_grace),
        )

    def _figures(
        self, load: LoadSpec, driven: Driven, drained: Drained, result: CheckResult, grace: float
    ) -> dict[str, Any]:
        tightest = result.tightest_margin
        return {
            "notes_posted": load.notes,
            "accepted": len(driven.client.accepted),
            "client_ops": driven.client.counts,
            "load_seconds": round(driven.load_seconds, 2),
            # where a run's time goes after the load: the drain (quiescence) and the wait
            # for the trace witness (settled_history)
            "drain_seconds": round(drained.drain_seconds, 2),
            "flush_seconds": round(drained.flush_seconds, 2),
            "stack_start_seconds": round(self.stack.start_seconds, 2),
            "deadline_s": round(self.deadline_s, 1),
            "service_budget_s": round(self.service_budget_s, 4),
            "backlog_allowance_max_s": round(
                max((d.backlog_s for d in result.deadlines.values()), default=0.0), 1
            ),
            "deadline_margin_min_s": round(tightest[1], 2) if tightest else None,
            "deadline_margin_note": tightest[0] if tightest else None,
            "recovery_lag_max_s": _recovery_lag_max(drained.history, grace),
        }
