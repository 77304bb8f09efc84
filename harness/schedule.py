"""Fault schedules: data (a list of :class:`FaultSpec`), generated from a seed, run on a
thread with every fault's real start and end recorded, heal always in ``finally``."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.checker import FaultWindow
from harness.errors import HarnessConfigError
from harness.faults import Effect, Fault, FaultMissed, FaultSpec, build_fault, validate_spec

if TYPE_CHECKING:
    from harness.fault_spans import HarnessTracing
    from harness.stack import PipelineStack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultRecord:
    """What happened: the spec, the concrete target, the real start and end, any error,
    and the :class:`~harness.faults.Effect` (what the fault hit)."""

    spec: FaultSpec
    target: str
    start: datetime
    end: datetime
    error: str | None = None
    effect: Effect = field(default_factory=Effect)

    @property
    def missed(self) -> str | None:
        """Why this fault cannot count as having bitten (an error, or it hit nothing)."""
        if self.error:
            return self.error
        if self.effect.hit is not True:
            return self.effect.missed or "the fault recorded no evidence of what it hit"
        return None

    def window(self) -> FaultWindow:
        return FaultWindow(
            self.spec.kind,
            self.target,
            self.start,
            self.end,
            effect=self.effect.summary,
            missed=self.missed,
            evidence=dict(self.effect.evidence),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "target": self.target,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "error": self.error,
            **self.effect.to_dict(),
        }


@dataclass
class Schedule:
    faults: list[FaultSpec] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        for spec in self.faults:
            validate_spec(spec)
        self.faults.sort(key=lambda s: s.at)

    @property
    def end(self) -> float:
        """Seconds into the run when the last fault heals."""
        return max((s.at + s.duration for s in self.faults), default=0.0)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.faults]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"seed": self.seed, "faults": self.to_list()}, indent=2))

    @classmethod
    def load(cls, path: Path) -> Schedule:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessConfigError(f"cannot read fault schedule {path}: {exc}") from exc
        items = data["faults"] if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise HarnessConfigError(f"{path}: expected a list of faults or {{'faults': [...]}}")
        return cls(
            [FaultSpec.from_dict(item) for item in items],
            seed=data.get("seed") if isinstance(data, dict) else None,
        )


def generate(
    seed: int,
    *,
    kinds: Sequence[FaultSpec],
    duration: float,
    count: int,
    min_gap: float = 1.0,
) -> Schedule:
    """A seeded schedule: ``count`` faults drawn from the ``kinds`` templates (their ``at`` is
    ignored), spread over ``duration`` seconds, never overlapping, ``min_gap`` apart."""
    if not kinds:
        raise HarnessConfigError("generate() needs at least one fault template")
    rng = random.Random(seed)
    specs: list[FaultSpec] = []
    cursor = 0.5
    slot = duration / max(count, 1)
    for index in range(count):
        template = rng.choice(list(kinds))
        start = max(cursor, index * slot + rng.uniform(0, slot / 3))
        specs.append(
            FaultSpec(
                template.kind, round(start, 2), template.duration, template.target, template.params
            )
        )
        cursor = start + template.duration + min_gap
    return Schedule(specs, seed=seed)


class ScheduleRunner:
    """Runs a schedule against a stack on a background thread.

    ``stop()`` heals every active fault at once (also on errors and Ctrl-C),
    and ``records`` holds each fault's real start and end.
    """

    def __init__(
        self,
        stack: PipelineStack,
        schedule: Schedule,
        *,
        tracing: HarnessTracing | None = None,
        on_record: Any = None,
    ) -> None:
        self.stack = stack
        self.schedule = schedule
        self.tracing = tracing
        self.rng = random.Random(schedule.seed if schedule.seed is not None else 0)
        self.records: list[FaultRecord] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._on_record = on_record

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        """Apply the schedule's operations one at a time, in the schedule's order: every
        heal that is due runs before the next inject. A fault is on for its ``duration``
        from when its inject returned (a ``busy`` wait for a worker to hold a note does not
        shorten it), and an inject that blocks or starts late shifts what follows by its
        lateness, so the operations keep their order and spacing: a late run never
        injects the next fault while an earlier one that should have healed is still on."""
        pending = sorted(self.schedule.faults, key=lambda s: s.at)
        active: list[tuple[float, Fault, datetime]] = []
        shift = 0.0  # how far the run has fallen behind the schedule
        try:
            while (pending or active) and not self._stop.is_set():
                now = time.monotonic() - self._t0
                next_inject = pending[0].at + shift if pending else float("inf")
                next_heal = min((end for end, _, _ in active), default=float("inf"))
                wait = min(next_inject, next_heal) - now
                if wait > 0 and self._stop.wait(wait):
                    break
                now = time.monotonic() - self._t0
                due = sorted((a for a in active if a[0] <= now), key=lambda a: a[0])
                for item in due:
                    active.remove(item)
                    self._heal(item[1], item[2])
                if due or not pending or pending[0].at + shift > now:
                    continue
                spec = pending.pop(0)
                injected = self._inject(spec)
                # on for its whole duration from when it took hold (a busy wait or a slow
                # inject does not eat into it), and what follows keeps its spacing
                took_hold = time.monotonic() - self._t0
                shift = max(shift, took_hold - spec.at)
                if injected is not None:
                    active.append((took_hold + spec.duration, *injected))
        finally:
            for _, fault, started in active:
                self._heal(fault, started)

    def _inject(self, spec: FaultSpec) -> tuple[Fault, datetime] | None:
        """Inject one fault, returning it with its start; a fault that missed or failed is
        recorded at once (there is nothing to heal)."""
        fault = build_fault(self.stack, spec, self.rng)
        started = datetime.now(UTC)
        try:
            fault.inject()
        except FaultMissed as exc:
            log.warning("fault %s missed: %s", spec.kind, exc)
            fault.effect.miss(str(exc))
            self._record(fault, started, datetime.now(UTC), None)
            return None
        except Exception as exc:
            log.exception("fault %s failed to inject", spec.kind)
            fault.effect.miss(f"inject failed: {exc}")
            self._record(fault, started, datetime.now(UTC), f"inject failed: {exc}")
            return None
        log.info("fault %s injected: %s", spec.kind, fault.effect.summary)
        return fault, started

    def _heal(self, fault: Fault, started: datetime) -> None:
        error = None
        try:
            fault.heal()
        except Exception as exc:
            log.exception("fault %s failed to heal", fault.spec.kind)
            error = f"heal failed: {exc}"
            self.errors.append(f"{fault.spec.kind} on {fault.target}: {error}")
        self._record(fault, started, datetime.now(UTC), error)
        log.info("fault %s on %s healed", fault.spec.kind, fault.target)

    def _record(self, fault: Fault, start: datetime, end: datetime, error: str | None) -> None:
        if fault.effect.hit is None:
            fault.effect.miss(f"{fault.spec.kind} did not record what it hit")
        record = FaultRecord(fault.spec, fault.target, start, end, error, fault.effect)
        with self._lock:
            self.records.append(record)
        if self.tracing is not None:
            # A fault that hit one note (kill_at_attempt) goes into that note's trace.
            note_id = getattr(fault, "note_id", None)
            observer = self.stack.direct_settings
            parent = (
                self.tracing.note_context(observer.database_dsn, note_id)
                if isinstance(note_id, int) and observer is not None
                else None
            )
            span = self.tracing.tracer.start_span(
                f"fault.{fault.spec.kind}",
                context=parent,
                start_time=int(start.timestamp() * 1e9),
                attributes={
                    "fault.kind": fault.spec.kind,
                    "fault.target": fault.target,
                    "notepipe.stack": self.stack.stack_id,
                    "fault.params": json.dumps(dict(fault.spec.params)),
                    "fault.hit": bool(fault.effect.hit),
                    "fault.effect": fault.effect.summary,
                    **({"note.id": note_id} if isinstance(note_id, int) else {}),
                    **({"fault.error": error} if error else {}),
                },
            )
            span.end(end_time=int(end.timestamp() * 1e9))
        if self._on_record is not None:
            self._on_record(record)
