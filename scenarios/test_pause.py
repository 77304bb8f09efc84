"""5. A worker paused (SIGSTOP) past its lease, then resumed: its attempt is a zombie.
The reconciler recovers the note, a newer attempt completes it, and the zombie's late
completion is fenced off: at most one effective completion, no write after terminal."""

from __future__ import annotations

import pytest

from harness.chaos_stage import LONG_NOTE
from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule
from harness.spans import ATTEMPT_SPAN

pytestmark = pytest.mark.chaos


def test_paused_worker_is_fenced(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    assert stack.settings is not None
    pause_for = stack.settings.lease_ttl + stack.settings.lease_grace + 4.0
    pauses = [
        FaultSpec("pause_worker", at=t, duration=pause_for, target="busy") for t in (3.0, 12.0)
    ]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=10, special={"[chaos:sleep=1.5]": 0.3}, every={LONG_NOTE: 80}),
        Schedule(pauses, seed=6),
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # paused an idle worker: unknown
    for record in outcome.faults:
        # Each pause froze an attempt; every frozen note ended (taken over or finished).
        assert record.effect.evidence["paused"], record
        assert not record.effect.evidence["fate"]["unresolved"], record.effect
    taken_over = [n for r in outcome.faults for n in r.effect.evidence["fate"]["recovered"]]
    assert taken_over, "no paused attempt was taken over"
    assert outcome.result.counts["recovered"] >= 1, "no paused attempt was taken over"
    fenced = [
        s
        for s in outcome.history.spans
        if s.name == ATTEMPT_SPAN and s.attributes.get("note.outcome") == "fenced"
    ]
    assert fenced, "the resumed zombie attempts should have been fenced (outcome=fenced)"
