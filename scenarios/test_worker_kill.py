"""2-3. Workers die mid-job: SIGKILL of the worker (parent and horse), or of the horse only,
repeated while load runs and other workers stay alive."""

from __future__ import annotations

import pytest

from harness.analysis import recovery_after_kills
from harness.chaos_stage import LONG_NOTE
from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.record import ScenarioRecord
from harness.schedule import Schedule

pytestmark = pytest.mark.chaos

SLOW = {"[chaos:sleep=1.0]": 0.2}


def _assert_kills_interrupted_and_recovered(outcome: ScenarioRecord) -> None:
    """Each kill hit a busy worker (its pid recorded) and interrupted at least one attempt;
    no interrupted attempt finished by itself, and every one of their notes ended."""
    for record in outcome.faults:
        evidence = record.effect.evidence
        assert evidence["pid"] and evidence["interrupted"], record
        fate = evidence["fate"]
        assert not fate["finished"] and not fate["unresolved"], record
        assert fate["recovered"] or fate["gave_up"], record


def test_worker_sigkill_mid_job(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=4, proxies=False)
    kills = [
        FaultSpec("kill_worker", at=t, duration=0.5, target="busy") for t in (3.0, 7.0, 11.0, 15.0)
    ]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=10, special=SLOW, every={LONG_NOTE: 80}),
        Schedule(kills, seed=2),
        analyze=lambda o: recovery_after_kills(o, stack.worker_pids()),
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # a kill that missed: unknown
    _assert_kills_interrupted_and_recovered(outcome)
    assert outcome.result.counts["recovered"] >= 1, "no killed attempt was recovered"
    assert outcome.figures["recovery_samples"] >= 1
    assert outcome.figures["recovery_median_s"] <= 10.0, outcome.figures


def test_horse_sigkill_only(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3, proxies=False)
    kills = [FaultSpec("kill_horse", at=t, target="busy") for t in (2.0, 5.0, 8.0, 11.0, 14.0)]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=10, special=SLOW),
        Schedule(kills, seed=3),
        analyze=lambda o: recovery_after_kills(o, stack.worker_pids()),
    )
    assert outcome.result.verdict == "valid", outcome.explain()
    _assert_kills_interrupted_and_recovered(outcome)
    assert outcome.result.counts["recovered"] >= 1
    assert all(w.alive() for w in stack.workers), "a horse kill must leave the worker running"
    assert all(r.effect.evidence["horses"] for r in outcome.faults), outcome.faults
