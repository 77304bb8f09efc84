"""Every fault proves it bit: after the run, each fault's class adds what the history shows
(:meth:`~harness.faults.Fault.confirm`), and a run with a fault that failed to inject or
hit nothing is never ``valid``: its verdict becomes ``unknown``, with the reason, as for
a missing witness (the run proves nothing about a fault that did not happen)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.faults.base import FaultRun, fault_class

if TYPE_CHECKING:
    from harness.checker import CheckResult, History
    from harness.faults.spec import FaultSpec
    from harness.schedule import FaultRecord

log = logging.getLogger(__name__)


def confirm_faults(
    records: Sequence[FaultRecord], history: History, client_ops: Sequence[Mapping[str, Any]]
) -> None:
    """Add to each record's effect what the run's history shows about it."""
    for record in records:
        try:
            run = FaultRun(record.start, record.end, history, client_ops)
            fault_class(record.spec.kind).confirm(record.effect, run)
        except Exception as exc:  # evidence is best effort; the reason stays in the record
            log.exception("confirming fault %s failed", record.spec.kind)
            record.effect.note(confirm_error=f"{type(exc).__name__}: {exc}")


def missed_faults(records: Sequence[FaultRecord], scheduled: Sequence[FaultSpec] = ()) -> list[str]:
    """Why each fault cannot count: it missed, failed, or (scheduled but without a record)
    never ran."""
    missed = [
        f"fault {r.spec.kind} at {r.spec.at:g}s ({r.target}) did not bite: {r.missed}"
        for r in records
        if r.missed
    ]
    unrecorded = list(records)
    for spec in scheduled:
        match = next((r for r in unrecorded if r.spec == spec), None)
        if match is None:
            missed.append(f"fault {spec.kind} at {spec.at:g}s never ran (the run ended first)")
        else:
            unrecorded.remove(match)
    return missed


def prove_faults(
    result: CheckResult, records: Sequence[FaultRecord], scheduled: Sequence[FaultSpec] = ()
) -> CheckResult:
    """``result`` with every missed fault named; ``valid`` becomes ``unknown``."""
    missed = missed_faults(records, scheduled)
    if not missed:
        return result
    return dataclasses.replace(
        result,
        verdict="unknown" if result.verdict == "valid" else result.verdict,
        reasons=(*missed, *result.reasons),
        missing_inputs={**result.missing_inputs, "faults": "; ".join(missed)},
    )
