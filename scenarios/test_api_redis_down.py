"""12. The API while Redis is unreachable: notes are stored and answered 202 ``pending``;
after Redis returns the reconciler enqueues them and every one completes."""

from __future__ import annotations

import pytest

from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule

pytestmark = pytest.mark.chaos


def test_api_accepts_notes_while_redis_is_down(
    notepipe_stack: MakeStack, notepipe_run: MakeRun
) -> None:
    stack = notepipe_stack(workers=3)
    outage = [FaultSpec("proxy_down", at=3.0, duration=6.0, target="redis")]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=15, timeout=20), Schedule(outage, seed=12)
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # Redis still reachable: unknown
    [outage_record] = outcome.faults
    assert outage_record.effect.evidence["probe"]["outcome"] != "ok", outage_record.effect
    assert outage_record.effect.evidence["errors_in_window"]["client"] >= 10, outage_record.effect
    pending = [op for op in outcome.client_ops if op["type"] == "ok" and op["status_code"] == 202]
    assert len(pending) >= 10, "notes posted during the outage should be answered 202 pending"
    assert outcome.figures["accepted"] == 200, outcome.figures["client_ops"]
    assert outcome.result.counts["completed"] == 200
