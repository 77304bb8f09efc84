"""10-11. Service restarts under load. Redis restarted with persistence (AOF: queued jobs
survive) and without it (every queued job is lost: the reconciler re-enqueues from the
ledger); PostgreSQL restarted (connections drop mid-transaction). 0 notes lost."""

from __future__ import annotations

import pytest

from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeService, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-persistence"])
def test_redis_restart(
    appendonly: bool,
    dedicated_service: MakeService,
    notepipe_stack: MakeStack,
    notepipe_run: MakeRun,
) -> None:
    redis_service = dedicated_service("redis", appendonly=appendonly)
    stack = notepipe_stack(workers=3, redis=redis_service)
    restarts = [
        FaultSpec("restart_service", at=t, duration=2.0, target="redis", params={"mode": "kill"})
        for t in (4.0, 12.0)
    ]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=12, special={"[chaos:sleep=0.5]": 0.2}),
        Schedule(restarts, seed=10),
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # Redis never went down: unknown
    assert outcome.result.counts["lost"] == 0
    effects = [r.effect.evidence for r in outcome.faults]
    assert all(e["jobs_before"] > 0 for e in effects), effects
    if appendonly:
        # The AOF brings the jobs back: at most the last moment's writes are lost.
        assert all(e["jobs_survived"] > e["jobs_lost"] for e in effects), effects
    else:
        # Without persistence every job is gone, finished or not.
        assert all(e["jobs_survived"] == 0 for e in effects), effects
    # Notes whose waiting jobs were lost were processed again: re-enqueued from the ledger.
    assert all(not e.get("not_reenqueued") for e in effects), effects
    assert sum(len(e.get("reenqueued", ())) for e in effects) == sum(
        len(e["lost_notes"]) for e in effects
    ), effects


def test_postgres_restart(
    dedicated_service: MakeService, notepipe_stack: MakeStack, notepipe_run: MakeRun
) -> None:
    postgres_service = dedicated_service("postgres")
    stack = notepipe_stack(workers=3, postgres=postgres_service)
    restarts = [
        FaultSpec("restart_service", at=t, duration=1.5, target="postgres", params={"mode": "stop"})
        for t in (4.0, 11.0)
    ]
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=12, special={"[chaos:sleep=0.5]": 0.2}),
        Schedule(restarts, seed=11),
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # PG never went down: unknown
    for record in outcome.faults:
        evidence = record.effect.evidence
        # Sessions were open when PostgreSQL went down, and the pipeline felt it: it saw
        # errors, or (behind PgBouncer, which holds a query until the server is back) the
        # client's requests waited through most of the outage.
        assert evidence["sessions_dropped"] > 0, record.effect
        down_s = (record.end - record.start).total_seconds()
        assert (
            evidence["errors_in_window"]["total"] > 0 or evidence["client_stall_s"] >= down_s / 2
        ), record.effect
    refused = [op for op in outcome.client_ops if op["type"] == "fail"]
    assert all(op["status_code"] == 503 for op in refused), refused[:3]
