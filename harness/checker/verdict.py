"""The verdict: ``check(history, config) -> CheckResult``.

Jepsen's merge: any violation makes the run ``invalid``; otherwise missing
inputs (ledger unreadable, no RQ snapshot, no spans) or notes still in flight
make it ``unknown``; otherwise it is ``valid``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.checker.classify import Classification, NoteClass, classify_note
from harness.checker.context import CheckContext, Violation
from harness.checker.history import CheckConfig, History
from harness.checker.invariants import INVARIANTS
from harness.checker.telemetry import TelemetryLoss, telemetry_loss
from harness.checker.timeline import build_timelines, effective_healed_at, job_owners

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

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    def notes_in(self, note_class: NoteClass) -> list[int]:
        return sorted(n for n, c in self.classifications.items() if c.note_class is note_class)

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
        }


def _missing_inputs(history: History) -> dict[str, str]:
    missing = {k: v for k, v in history.input_errors.items() if k in INPUTS}
    if history.rq is None and "rq" not in missing:
        missing["rq"] = "no RQ snapshot was taken"
    return missing


def check(history: History, config: CheckConfig) -> CheckResult:
    """Classify every note, run every invariant whose inputs exist, and merge a verdict."""
    missing = _missing_inputs(history)
    reasons = [f"input {name} missing: {why}" for name, why in sorted(missing.items())]
    if "ledger" in missing:
        skipped = {i.name: "skipped: ledger unreadable" for i in INVARIANTS}
        return CheckResult("unknown", tuple(reasons), {}, (), {}, (), skipped, missing, config)

    healed_at = effective_healed_at(history, config)
    timelines = build_timelines(history, config)
    classifications = {
        note_id: classify_note(
            t, config, observed_at=history.observed_at, healed_at=healed_at, rq=history.rq
        )
        for note_id, t in timelines.items()
    }
    ctx = CheckContext(
        history, config, timelines, classifications, healed_at, job_owners(timelines)
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
    reasons[:0] = [str(v) for v in violations]

    counter = Counter(c.note_class.value for c in classifications.values())
    counts = {cls.value: counter.get(cls.value, 0) for cls in NoteClass}
    counts["total"] = len(classifications)

    verdict: Verdict
    if violations:
        verdict = "invalid"
    elif missing or in_flight:
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
    )
