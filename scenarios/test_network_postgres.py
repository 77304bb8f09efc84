"""9. PostgreSQL network faults on the proxy between the pipeline and PostgreSQL:
latency, the database unreachable in the middle of transactions (the proxy drops
every open connection), and short connection resets while long notes (three lease periods)
hold their leases by heartbeat. The API answers 503 while the ledger is unreachable, and
nothing it accepted is lost."""

from __future__ import annotations

import pytest

from harness.chaos_stage import LONG_NOTE
from harness.faults import FaultSpec
from harness.faults.witness import assert_network_faults_bit
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule

pytestmark = pytest.mark.chaos

PG_FAULTS = [
    FaultSpec(
        "toxic",
        at=1.0,
        duration=4.0,
        target="postgres",
        params={"type": "latency", "attributes": {"latency": 100, "jitter": 20}},
    ),
    FaultSpec("proxy_down", at=7.0, duration=3.0, target="postgres"),
    FaultSpec(
        "toxic",
        at=12.0,
        duration=2.0,
        target="postgres",
        params={"type": "reset_peer", "attributes": {"timeout": 0}},
    ),
    # Blips shorter than a lease, while long notes run: a live heartbeat fails once or
    # twice, then renews on a new connection and keeps its lease; one that gives up loses
    # it. Each blip outlasts the heartbeat interval (0.5 s), so every running attempt's
    # heartbeat meets it (0.3 s blips 1.5 s apart all fell between the same beats); they
    # are 3 s apart, so the lease a dead heartbeat leaves runs out (2 s after its last
    # renewal) in a quiet stretch that no later blip excuses; and they go on past the
    # load while the long notes queued behind it run.
    *(
        FaultSpec(
            "toxic",
            at=at,
            duration=0.6,
            target="postgres",
            params={"type": "reset_peer", "attributes": {"timeout": 0}},
        )
        for at in (16.5, 19.5, 22.5, 25.5, 28.5, 31.5)
    ),
]


def test_postgres_network_faults(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=12, special={"[chaos:sleep=0.5]": 0.3}, every={LONG_NOTE: 40}),
        Schedule(PG_FAULTS, seed=9),
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # a toxic that missed: unknown
    assert_network_faults_bit(outcome)
    refused = [op for op in outcome.client_ops if op["type"] == "fail"]
    assert all(op["status_code"] == 503 for op in refused), refused[:3]
