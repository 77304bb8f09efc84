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
from datetime import UTC, datetime
from typing import Any

from harness.calibration import DEFAULT_SERVICE_BUDGET_S
from harness.checker import CheckConfig, History, check
from harness.fault_spans import HarnessTracing
from harness.faults.proof import confirm_faults, prove_faults
from harness.load import ClientHistory, LoadSpec, run_load
from harness.progress import RunProgress
from harness.record import ScenarioRecord, client_ops
from harness.schedule import Schedule, ScheduleRunner
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
            self.progress.update("waiting for every note to reach a terminal status")
            drain_started = time.monotonic()
            leftover = self.stack.observer.wait_quiescent(
                self.deadline_s + QUIESCENCE_SLACK_S + len(client.accepted) / MIN_DRAIN_RATE
            )
            drain_seconds = time.monotonic() - drain_started
            self.progress.update("waiting for the trace witness")
            records = list(runner.records)
            history = self.stack.observer.settled_history(
                accepted=client.accepted, faults=tuple(r.window() for r in records)
            )
            flush_seconds = time.monotonic() - drain_started - drain_seconds
            self.progress.update("checking the history")
        ops = client_ops(client.ops)
        confirm_faults(records, history, ops)  # each fault: what the history shows
        history = dataclasses.replace(history, faults=tuple(r.window() for r in records))
        assert self.stack.settings is not None
        config = CheckConfig.from_settings(
            self.stack.settings,
            workers=self.stack.options.workers,
            service_budget_s=self.service_budget_s,
            tolerance_s=self.tolerance_s,
        )
        result = prove_faults(check(history, config), records, schedule.faults)  # missed: unknown
        tightest = result.tightest_margin
        record = ScenarioRecord(
            name=self.name,
            started_at=started,
            finished_at=datetime.now(UTC),
            schedule=schedule,
            faults=records,
            client_ops=ops,
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
                # wait for the trace witness (settled_history)
                "drain_seconds": round(drain_seconds, 2),
                "flush_seconds": round(flush_seconds, 2),
                "stack_start_seconds": round(self.stack.start_seconds, 2),
                "deadline_s": round(self.deadline_s, 1),
                "service_budget_s": round(self.service_budget_s, 4),
                "backlog_allowance_max_s": round(
                    max((d.backlog_s for d in result.deadlines.values()), default=0.0), 1
                ),
                "deadline_margin_min_s": round(tightest[1], 2) if tightest else None,
                "deadline_margin_note": tightest[0] if tightest else None,
                "recovery_lag_max_s": _recovery_lag_max(history, self.stack.settings.lease_grace),
                **(figures or {}),
            },
        )
        if analyze is not None:
            record.figures.update(analyze(record))
        if self.on_finish is not None:
            self.on_finish(record)
        return record
