"""14. Mixed fault schedules drawn by Hypothesis from the catalog's faults.

CI runs a few derandomized examples; ``--notepipe-soak N`` runs N random ones (a long
soak). A failing schedule is shrunk by Hypothesis to the shortest one that still breaks
an invariant, and printed as JSON (replay it with ``Schedule.load``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from harness.chaos_stage import LONG_NOTE
from harness.faults import FaultSpec
from harness.fixtures.scenario import MakeRun, MakeStack
from harness.load import LoadSpec
from harness.schedule import Schedule
from harness.session import NotepipeSession

pytestmark = pytest.mark.chaos

CI_EXAMPLES = 2


def _toxic(target: str, kind: str, **attributes: float) -> dict[str, object]:
    return {"kind": "toxic", "target": target, "params": {"type": kind, "attributes": attributes}}


CATALOG: list[dict[str, object]] = [
    {"kind": "kill_worker", "target": "busy"},
    {"kind": "kill_horse", "target": "busy"},
    {"kind": "term_worker", "target": "busy"},
    {"kind": "term_worker", "target": "busy", "params": {"forced": True}},
    {"kind": "pause_worker", "target": "busy"},
    {"kind": "proxy_down", "target": "redis"},
    {"kind": "proxy_down", "target": "postgres"},
    _toxic("redis", "latency", latency=120, jitter=40),
    _toxic("redis", "reset_peer", timeout=0),
    _toxic("postgres", "latency", latency=80),
    {"kind": "restart_service", "target": "redis", "params": {"mode": "kill", "keep_data": False}},
]


@st.composite
def fault_specs(draw: st.DrawFn) -> FaultSpec:
    template = draw(st.sampled_from(CATALOG))
    return FaultSpec.from_dict(
        {
            **template,
            "at": draw(st.floats(min_value=1.0, max_value=14.0).map(lambda t: round(t, 1))),
            "duration": draw(st.floats(min_value=0.5, max_value=4.0).map(lambda t: round(t, 1))),
        }
    )


schedules = st.lists(fault_specs(), min_size=1, max_size=5).map(
    lambda faults: Schedule(sorted(faults, key=lambda f: f.at))
)


def test_mixed_schedules(
    notepipe_stack: MakeStack, notepipe_run: MakeRun, notepipe_session: NotepipeSession
) -> None:
    soak = notepipe_session.soak_examples
    runs = [0]

    @settings(
        max_examples=soak or CI_EXAMPLES,
        derandomize=soak is None,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink] if soak else [Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(schedule=schedules)
    def run_one(schedule: Schedule) -> None:
        runs[0] += 1
        note(f"schedule: {json.dumps(schedule.to_list())}")
        stack = notepipe_stack(workers=4)
        try:
            outcome = notepipe_run(stack, name=f"test_mixed_schedules[{runs[0]}]").execute(
                LoadSpec(
                    notes=200, rate=12, special={"[chaos:sleep=0.8]": 0.2}, every={LONG_NOTE: 80}
                ),
                schedule,
            )
        finally:
            stack.stop()
        assert outcome.result.verdict == "valid", outcome.explain()  # a fault that missed: unknown
        # Every fault of the schedule says what it hit (one that never ran is unknown too).
        assert all(r.effect.hit and r.effect.summary for r in outcome.faults), outcome.faults

    run_one()
