"""8. Redis network faults, injected on the proxy between the pipeline and Redis:
latency, reset_peer, a black hole (timeout), Redis unreachable for several seconds,
slicer and bandwidth. Notes accepted meanwhile are kept and complete after healing."""

from __future__ import annotations

import pytest

from harness.faults import FaultSpec
from harness.faults.witness import assert_network_faults_bit
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule

pytestmark = pytest.mark.chaos


def _toxic(at: float, duration: float, toxic: str, **attributes: float) -> FaultSpec:
    return FaultSpec(
        "toxic",
        at=at,
        duration=duration,
        target="redis",
        params={"type": toxic, "attributes": attributes},
    )


REDIS_FAULTS = [
    _toxic(1.0, 3.0, "latency", latency=150, jitter=50),
    _toxic(5.0, 1.5, "reset_peer", timeout=0),
    _toxic(8.0, 2.0, "timeout", timeout=0),
    FaultSpec("proxy_down", at=11.0, duration=4.0, target="redis"),
    _toxic(16.0, 2.0, "slicer", average_size=16, size_variation=8, delay=200),
    _toxic(19.0, 2.0, "bandwidth", rate=32),
]


def test_redis_network_faults(notepipe_stack: MakeStack, notepipe_run: MakeRun) -> None:
    stack = notepipe_stack(workers=3)
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=200, rate=9), Schedule(REDIS_FAULTS, seed=8)
    )
    assert outcome.result.verdict == "valid", outcome.explain()  # a toxic that missed: unknown
    assert_network_faults_bit(outcome)
    # Every post was answered: refused (fail) only with a clear status, never lost.
    assert outcome.figures["accepted"] + outcome.figures["client_ops"].get("fail", 0) >= 190
