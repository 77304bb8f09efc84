"""13. Duplicate delivery: the same note's job is delivered again while its first delivery
runs (RQ's at-least-once). Both run, concurrently; the ledger's claim lets one through,
so every note has exactly one effective completion."""

from __future__ import annotations

import pytest
import redis

from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import ClientHistory, LoadSpec
from harness.wait import wait_until

pytestmark = pytest.mark.chaos


def test_duplicate_delivery(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=4)
    assert stack.observer is not None
    client = redis.Redis.from_url(stack.observer.redis_dsn)
    queue_key = f"rq:queue:{stack.observer.queue_name}"
    duplicated: set[str] = set()

    def redeliver(history: ClientHistory) -> None:
        """While load runs, push the job id of every running job onto the queue again."""

        def enough() -> bool:
            for member in client.zrange(f"rq:wip:{stack.observer.queue_name}", 0, -1):  # type: ignore[union-attr]
                job_id = member.decode().rsplit(":", 1)[0]
                if job_id not in duplicated:
                    client.lpush(queue_key, job_id)
                    duplicated.add(job_id)
            return len(duplicated) >= 40

        wait_until(
            enough, 60, describe="40 running jobs to redeliver", interval=0.02, max_interval=0.05
        )

    try:
        outcome = notepipe_run(stack).execute(
            LoadSpec(notes=200, rate=12, special={"[chaos:sleep=0.5]": 0.5}),
            during=redeliver,
            figures={"redelivered_jobs": 40},
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
