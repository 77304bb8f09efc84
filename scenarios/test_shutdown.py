"""4. Worker shutdown mid-job: warm (SIGTERM: the current job finishes, then the worker
exits) and forced (a second SIGTERM: RQ kills the horse, the lease recovers the note)."""

from __future__ import annotations

import pytest

from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule

pytestmark = pytest.mark.chaos

SLOW = {"[chaos:sleep=1.0]": 0.25}


def test_warm_shutdown(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    terms = [FaultSpec("term_worker", at=t, duration=1.0, target="busy") for t in (3.0, 8.0, 13.0)]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=10, special=SLOW), Schedule(terms, seed=4)
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # a missed SIGTERM: unknown
    for record in outcome.faults:
        # The jobs in flight at SIGTERM finished in their own attempt; the worker exited 0.
        in_flight = [c["note"] for c in record.effect.evidence["in_flight"]]
        assert in_flight, record
        assert record.effect.evidence["fate"]["finished"] == in_flight, record.effect
        assert record.effect.evidence["exit_code"] == 0, record.effect
    # A warm shutdown lets the running attempt finish: nothing needs recovering.
    assert outcome.result.counts["recovered"] == 0, outcome.result.counts


def test_forced_shutdown(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    terms = [
        FaultSpec("term_worker", at=t, duration=1.0, target="busy", params={"forced": True})
        for t in (3.0, 8.0, 13.0)
    ]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=10, special=SLOW), Schedule(terms, seed=5)
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # nothing interrupted: unknown
    for record in outcome.faults:
        # The cold shutdown interrupted the jobs in flight; each note was recovered (or
        # failed on its budget), none finished by itself and none is left hanging.
        assert record.effect.evidence["interrupted"], record
        fate = record.effect.evidence["fate"]
        assert not fate["finished"] and not fate["unresolved"], record.effect
    assert outcome.result.counts["recovered"] >= 1, outcome.result.counts
