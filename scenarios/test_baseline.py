"""1. Baseline: no faults. 200 notes through API → RQ → workers → ledger."""

from __future__ import annotations

import pytest

from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec

pytestmark = pytest.mark.chaos


def test_baseline(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    outcome = notepipe_run(stack).execute(LoadSpec(notes=200, rate=15))
    assert outcome.result.verdict == "valid", outcome.explain()
    counts = outcome.result.counts
    assert counts["completed"] == 200, counts
    assert outcome.figures["accepted"] == 200
