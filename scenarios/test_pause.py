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
from notepipe.contracts.spans import NOTE_FENCED_BY_HEARTBEAT

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


def test_zombie_completing_during_its_takeover_is_fenced(
    notepipe_stack: MakeStack, notepipe_run: MakeRun
) -> None:
    """The zombie's completion lands while the newer attempt holds the note: only the
    attempt check in the completion keeps it out. A long note (6 s, wall clock) is paused
    2.5 s into its attempt. Its lease runs out ~2.5 s later (lease 2 s, grace 0.5 s) and
    its retry, due 2 s after the recovery, starts at once (no backlog) and runs 6 s; the
    zombie resumes 7.5 s after the pause, halfway through that retry, and completes. The
    job timeout is 20 s here, so the zombie's ~10 s attempt reaches its completion (with
    the catalog's 8 s, RQ's alarm would end it as a timeout on resume)."""
    stack = notepipe_stack(workers=3, settings={"job_timeout": 20.0}, proxies=False)
    assert stack.settings is not None
    settings = stack.settings
    recovered_after = settings.lease_ttl + settings.lease_grace + settings.reconcile_interval
    pause_for = recovered_after + settings.retry_interval(1) + 2.5
    pause = FaultSpec(
        "pause_worker",
        at=2.9,
        duration=pause_for,
        target="busy",
        params={"min_age": 2.5, "timeout": 20},
    )
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=24, rate=12, every={LONG_NOTE: 8}), Schedule([pause], seed=5)
    )
    assert outcome.result.verdict == "valid", outcome.explain()
    (record,) = outcome.faults
    (paused,) = record.effect.evidence["paused"]
    note, attempt = paused["note"], paused["attempt"]
    assert attempt == 1 and record.effect.evidence["fate"]["recovered"] == [note], record.effect

    # The fault bit where it matters: the zombie ended inside the takeover attempt.
    spans = [s for s in outcome.history.spans if s.name == ATTEMPT_SPAN and s.note_id == note]
    zombie = [s for s in spans if s.attributes.get("note.attempt") == attempt]
    assert [s.attributes.get("note.outcome") for s in zombie] == ["fenced"], zombie
    # fenced at its completion (not ended by a timeout or an error on resume)
    assert zombie[0].attributes.get(NOTE_FENCED_BY_HEARTBEAT) is not None, zombie
    events = [e for e in outcome.history.events if e.note_id == note]
    claim = next(e for e in events if e.to_status == "processing" and e.attempt == attempt + 1)
    end = next(e for e in events if e.from_status == "processing" and e.attempt == attempt + 1)
    assert end.to_status == "completed", events
    zombie_end_s = zombie[0].end_ns / 1e9
    assert claim.at.timestamp() < zombie_end_s < end.at.timestamp(), (
        f"the zombie ended at {zombie_end_s}, outside attempt {attempt + 1} "
        f"({claim.at.timestamp()} .. {end.at.timestamp()}): it did not race the takeover"
    )
