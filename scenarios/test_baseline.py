"""1. Baseline: no faults. 200 notes through API → RQ → workers → ledger, among them healthy
long notes (three lease periods each): they complete on attempt 1 only because the heartbeat
keeps renewing their lease."""

from __future__ import annotations

import pytest

from harness.chaos_stage import LONG_NOTE
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec

pytestmark = pytest.mark.chaos


def test_baseline(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    outcome = notepipe_run(stack).execute(LoadSpec(notes=200, rate=15, every={LONG_NOTE: 60}))
    assert outcome.result.verdict == "valid", outcome.explain()
    counts = outcome.result.counts
    assert counts["completed"] == 200, counts
    assert outcome.figures["accepted"] == 200
    long_notes = [n for n in outcome.history.notes if LONG_NOTE in (n.content or "")]
    assert len(long_notes) == 3
    assert all(n.status == "completed" and n.attempt == 1 for n in long_notes), long_notes
