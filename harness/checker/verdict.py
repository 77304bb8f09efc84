"""The verdict: ``check(history, config) -> CheckResult``.

Jepsen's merge: any violation makes the run ``invalid``; otherwise missing
inputs (ledger unreadable, no RQ snapshot, no spans) or notes still in flight
make it ``unknown``; otherwise it is ``valid``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.checker.classify import Classification, NoteClass, classify_note
from harness.checker.context import CheckContext, Violation
from harness.checker.history import CheckConfig, History
from harness.checker.invariants import INVARIANTS
from harness.checker.oracle import NoteDeadline, margins, note_deadlines
from harness.checker.span_gaps import TelemetryLoss, telemetry_loss, unwitnessed_attempts
from harness.checker.timeline import build_timelines, job_owners

Verdict = Literal["valid", "invalid", "unknown"]
INPUTS: tuple[str, ...] = ("ledger", "rq", "spans")


@dataclass(frozen=True)
class CheckResult:
    verdict: Verdict
    reasons: tuple[str, ...]
    classifications: Mapping[int, Classification]
    violations: tuple[Violation, ...]
    counts: Mapping[str, int]
    telemetry_loss: tuple[TelemetryLoss, ...]
    invariants: Mapping[str, str]  # name -> "ok" | "violated" | "skipped: <why>"
    missing_inputs: Mapping[str, str]
    config: CheckConfig
    deadlines: Mapping[int, NoteDeadline] = field(default_factory=dict)
    margins: Mapping[int, float] = field(default_factory=dict)  # deadline - terminal time

    @property
    def tightest_margin(self) -> tuple[int, float] | None:
        """(note id, seconds) of the note that came closest to its deadline."""
        if not self.margins:
            return None
        note_id = min(self.margins, key=lambda n: (self.margins[n], n))
        return note_id, self.margins[note_id]

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    def violations_of(self, invariant: str) -> list[Violation]:
        return [v for v in self.violations if v.invariant == invariant]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, for ``summary.json``."""
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "counts": dict(self.counts),
            "invariants": dict(self.invariants),
            "violations": [v.to_dict() for v in self.violations],
            "telemetry_loss": [t.to_dict() for t in self.telemetry_loss],
            "missing_inputs": dict(self.missing_inputs),
            "notes": {str(n): c.to_dict() for n, c in sorted(self.classifications.items())},
            "config": self.config.to_dict(),
            "tightest_deadline_margin": _margin_dict(self.tightest_margin, self.deadlines),
        }


def _margin_dict(
    tightest: tuple[int, float] | None, deadlines: Mapping[int, NoteDeadline]
) -> dict[str, Any] | None:
    if tightest is None:
        return None
    note_id, seconds = tightest
    deadline = deadlines.get(note_id)
    return {
        "note_id": note_id,
        "margin_s": round(seconds, 3),
        **(deadline.to_dict() if deadline is not None else {}),
    }


def _missing_inputs(history: History) -> dict[str, str]:
    missing = {k: v for k, v in history.input_errors.items() if k in INPUTS}
    if history.rq is None and "rq" not in missing:
        missing["rq"] = "no RQ snapshot was taken"
    claims = sum(1 for e in history.events if e.to_status == "processing")
    if not history.spans and claims and "spans" not in missing:
        missing["spans"] = (
            f"the collector received no spans, though the ledger has {claims} attempt(s)"
        )
    return missing


def check(history: History, config: CheckConfig) -> CheckResult:
    """Classify every note, run every invariant whose inputs exist, and merge a verdict."""
    missing = _missing_inputs(history)
    reasons = [f"input {name} missing: {why}" for name, why in sorted(missing.items())]
    if "ledger" in missing:
        skipped = {i.name: "skipped: ledger unreadable" for i in INVARIANTS}
        return CheckResult("unknown", tuple(reasons), {}, (), {}, (), skipped, missing, config)

    timelines = build_timelines(history)
    deadlines = note_deadlines(
        (t for t in timelines.values() if t.note is not None),
        config,
        history.faults,
        history.observed_at,
    )
    classifications = {
        note_id: classify_note(
            t,
            config,
            observed_at=history.observed_at,
            deadline=d.deadline if (d := deadlines.get(note_id)) is not None else None,
            rq=history.rq,
            faults=history.faults,
        )
        for note_id, t in timelines.items()
    }
    ctx = CheckContext(
        history, config, timelines, classifications, deadlines, job_owners(timelines)
    )

    violations: list[Violation] = []
    status: dict[str, str] = {}
    for invariant in INVARIANTS:
        absent = sorted(invariant.needs & missing.keys())
        if absent:
            status[invariant.name] = f"skipped: {', '.join(absent)} missing"
            continue
        found = invariant.check(ctx)
        violations.extend(found)
        status[invariant.name] = "violated" if found else "ok"

    in_flight = sorted(n for n, c in classifications.items() if c.note_class is NoteClass.IN_FLIGHT)
    if in_flight:
        reasons.append(f"notes still in flight before their deadline: {in_flight}")
    gaps = (
        unwitnessed_attempts(timelines.values(), history.faults) if "spans" not in missing else []
    )
    if gaps:
        shown = ", ".join(f"note {g.note_id} attempt {g.attempt}" for g in gaps[:10])
        reasons.append(
            f"trace witness incomplete: {len(gaps)} attempt(s) that ended by themselves "
            f"({', '.join(sorted({str(g.cause) for g in gaps}))}) have no attempt span: {shown}"
        )
    reasons[:0] = [str(v) for v in violations]

    counter = Counter(c.note_class.value for c in classifications.values())
    counts = {cls.value: counter.get(cls.value, 0) for cls in NoteClass}
    counts["total"] = len(classifications)

    verdict: Verdict
    if violations:
        verdict = "invalid"
    elif missing or in_flight or gaps:
        verdict = "unknown"
    else:
        verdict = "valid"
    loss = tuple(telemetry_loss(timelines.values())) if "spans" not in missing else ()
    return CheckResult(
        verdict,
        tuple(reasons),
        classifications,
        tuple(violations),
        counts,
        loss,
        status,
        missing,
        config,
        deadlines,
        margins(deadlines, timelines, history.observed_at),
    )
