"""13. Duplicate delivery: the same note's job is delivered again while its first delivery
runs (RQ's at-least-once): right after it started, and again late in long attempts, past
the retry interval (as when RQ's abandoned-job cleanup hands a live attempt's job to
another worker). Both deliveries run, concurrently; the ledger's claim lets one through,
so every note has exactly one effective completion."""

from __future__ import annotations

import time

import pytest
import redis

from harness.chaos_stage import LONG_NOTE
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import ClientHistory, LoadSpec
from harness.wait import wait_until

pytestmark = pytest.mark.chaos

EARLY = 40  # jobs redelivered as soon as they are seen running
LATE = 2  # jobs redelivered again once they have run past the retry interval


def test_duplicate_delivery(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=4)
    assert stack.direct_settings is not None and stack.settings is not None
    client = redis.Redis.from_url(stack.direct_settings.redis_dsn)
    queue_key = f"rq:queue:{stack.direct_settings.queue_name}"
    wip_key = f"rq:wip:{stack.direct_settings.queue_name}"
    # From here on only the note's status (not the retry gate) can refuse the duplicate.
    late_after = stack.settings.retry_interval(1) + 1.0
    duplicated: set[str] = set()
    late: set[str] = set()
    first_seen: dict[str, float] = {}

    def redeliver(history: ClientHistory) -> None:
        """While load runs, push the job id of running jobs onto the queue again."""

        def enough() -> bool:
            now = time.monotonic()
            for member in client.zrange(wip_key, 0, -1):  # type: ignore[union-attr]
                job_id = member.decode().rsplit(":", 1)[0]
                seen = first_seen.setdefault(job_id, now)
                if job_id not in duplicated and len(duplicated) < EARLY:
                    client.lpush(queue_key, job_id)
                    duplicated.add(job_id)
                elif job_id not in late and len(late) < LATE and now - seen > late_after:
                    client.lpush(queue_key, job_id)
                    late.add(job_id)
            return len(duplicated) >= EARLY and len(late) >= LATE

        wait_until(
            enough,
            90,
            describe=f"{EARLY} running jobs to redeliver, {LATE} of them again late",
            interval=0.02,
            max_interval=0.05,
        )

    try:
        outcome = notepipe_run(stack).execute(
            LoadSpec(notes=200, rate=12, special={"[chaos:sleep=0.5]": 0.5}, every={LONG_NOTE: 40}),
            during=redeliver,
            figures={"redelivered_jobs": EARLY, "redelivered_late": LATE},
        )
    finally:
        client.close()
    assert outcome.result.verdict == "valid", outcome.explain()
    assert outcome.result.invariants["single_completion"] == "ok"
    skipped = [
        s
        for s in outcome.history.spans
        if s.name == "note.attempt" and s.attributes.get("note.outcome") == "skipped"
    ]
    assert skipped, "duplicate deliveries should have been refused by the ledger's claim"
    assert len(late) >= LATE
