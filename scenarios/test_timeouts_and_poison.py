"""6-7. Slow notes exceed the job timeout and poison notes raise: each is retried and then
``failed`` after exactly 1 + retries attempts, every attempt bounded by the timeout and
every retry gap at least its configured interval."""

from __future__ import annotations

import pytest

from harness.analysis import attempt_durations
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec

pytestmark = pytest.mark.chaos


def _failed_notes(outcome: object) -> list[object]:
    return [n for n in outcome.history.notes if n.status == "failed"]  # type: ignore[attr-defined]


def test_job_timeout(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=4, settings={"job_timeout": 2.0, "retry_max": 1})
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=12, special={"[chaos:sleep=30]": 0.05}),
        analyze=lambda o: {"max_attempt_s": round(max(attempt_durations(o), default=0), 2)},
    )
    assert outcome.result.verdict == "valid", outcome.explain()
    failed = _failed_notes(outcome)
    assert failed, "some notes should have timed out"
    assert all(n.attempt == 2 for n in failed)  # type: ignore[attr-defined]
    assert all("timeout" in (n.last_error or "").lower() for n in failed)  # type: ignore[attr-defined]
    assert outcome.figures["max_attempt_s"] < 2.0 + 1.5


def test_poison_notes(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3, settings={"retry_max": 2, "retry_intervals": (2.0, 3.0)})
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=15, special={"[chaos:raise]": 0.1, "[chaos:raise-until=1]": 0.1})
    )
    assert outcome.result.verdict == "valid", outcome.explain()
    failed = _failed_notes(outcome)
    assert failed, "the poison notes should have failed"
    assert all(n.attempt == 3 for n in failed)  # type: ignore[attr-defined]
    assert outcome.result.invariants["retry_gaps_respected"] == "ok"
    flaky = [n for n in outcome.history.notes if n.status == "completed" and n.attempt == 2]
    assert flaky, "notes that fail once should complete on their retry"
