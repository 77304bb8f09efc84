"""harness.schedule and FaultSpec as data: seeded generation, JSON round trip, validation.

No services: schedules are plain data until a ScheduleRunner applies them to a stack.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from harness.errors import HarnessConfigError
from harness.faults import FAULT_KINDS, FaultSpec
from harness.schedule import Schedule, generate

TEMPLATES = [
    FaultSpec("kill_worker", at=0, duration=0.5, target="busy"),
    FaultSpec("pause_worker", at=0, duration=3.0),
    FaultSpec("proxy_down", at=0, duration=2.0, target="redis"),
    FaultSpec("toxic", at=0, duration=1.5, target="postgres", params={"type": "latency"}),
    FaultSpec("scale_workers", at=0, duration=2.0, params={"delta": 1}),
]


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_generate_is_deterministic_for_a_seed(seed: int) -> None:
    first = generate(seed, kinds=TEMPLATES, duration=30, count=6)
    second = generate(seed, kinds=TEMPLATES, duration=30, count=6)
    assert first.to_list() == second.to_list()
    assert first.seed == seed


def test_generate_differs_between_seeds() -> None:
    schedules = {
        json.dumps(generate(seed, kinds=TEMPLATES, duration=30, count=6).to_list())
        for seed in range(10)
    }
    assert len(schedules) > 1, "ten seeds gave the same schedule"


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize(("duration", "count"), [(20.0, 4), (30.0, 6), (60.0, 3)])
def test_generated_faults_never_overlap_and_fit_the_duration(
    seed: int, duration: float, count: int
) -> None:
    min_gap = 1.0
    schedule = generate(seed, kinds=TEMPLATES, duration=duration, count=count, min_gap=min_gap)
    faults = schedule.faults
    assert len(faults) == count
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    for earlier, later in itertools.pairwise(faults):
        # ``at`` is rounded to 10 ms, so allow that much.
        assert later.at >= earlier.at + earlier.duration + min_gap - 0.011, (earlier, later)
    assert faults[0].at >= 0.5
    # Every fault starts inside its slot and the schedule heals within the run's duration.
    assert all(f.at < duration for f in faults), faults
    assert schedule.end <= duration, (schedule.end, faults)


def test_generated_faults_come_from_the_templates() -> None:
    schedule = generate(3, kinds=TEMPLATES, duration=40, count=8)
    shapes = {(t.kind, t.duration, t.target, json.dumps(dict(t.params))) for t in TEMPLATES}
    for spec in schedule.faults:
        assert (spec.kind, spec.duration, spec.target, json.dumps(dict(spec.params))) in shapes


def test_generate_without_templates_is_refused() -> None:
    with pytest.raises(HarnessConfigError, match="at least one fault template"):
        generate(1, kinds=[], duration=10, count=2)


def test_schedule_save_load_round_trip(tmp_path: Path) -> None:
    schedule = generate(42, kinds=TEMPLATES, duration=30, count=5)
    path = tmp_path / "schedule.json"
    schedule.save(path)
    loaded = Schedule.load(path)
    assert loaded.seed == 42
    assert loaded.faults == schedule.faults
    assert loaded.to_list() == schedule.to_list()


def test_schedule_load_accepts_a_bare_list_and_sorts_it(tmp_path: Path) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(
        json.dumps(
            [
                {"kind": "kill_horse", "at": 5.0},
                {"kind": "kill_worker", "at": 1.0, "duration": 0.5, "target": "busy"},
            ]
        )
    )
    loaded = Schedule.load(path)
    assert loaded.seed is None
    assert [(f.kind, f.at) for f in loaded.faults] == [("kill_worker", 1.0), ("kill_horse", 5.0)]
    assert loaded.end == 5.0


def test_schedule_load_reports_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(HarnessConfigError, match="cannot read fault schedule"):
        Schedule.load(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(HarnessConfigError, match="cannot read fault schedule"):
        Schedule.load(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"faults": {"kind": "kill_worker"}}))
    with pytest.raises(HarnessConfigError, match="expected a list of faults"):
        Schedule.load(wrong)


def test_fault_spec_dict_round_trip() -> None:
    for template in TEMPLATES:
        assert FaultSpec.from_dict(template.to_dict()) == template


def test_fault_spec_defaults() -> None:
    spec = FaultSpec.from_dict({"kind": "kill_worker", "at": "2.5"})
    assert (spec.at, spec.duration, spec.target, dict(spec.params)) == (2.5, 0.0, "any", {})


def test_fault_spec_rejects_unknown_keys() -> None:
    with pytest.raises(HarnessConfigError, match=r"unknown keys \['when'\]"):
        FaultSpec.from_dict({"kind": "kill_worker", "at": 1.0, "when": "now"})


def test_fault_spec_rejects_unknown_kinds_listing_the_valid_ones() -> None:
    with pytest.raises(HarnessConfigError, match="unknown fault kind 'explode'") as info:
        FaultSpec.from_dict({"kind": "explode", "at": 1.0})
    for kind in FAULT_KINDS:
        assert kind in str(info.value)


@pytest.mark.parametrize("kind", ["restart_service", "pause_service", "proxy_down"])
def test_fault_spec_rejects_bad_service_targets(kind: str) -> None:
    with pytest.raises(
        HarnessConfigError, match=f"fault {kind} needs target 'redis' or 'postgres'"
    ):
        FaultSpec.from_dict({"kind": kind, "at": 1.0, "target": "mysql"})


def test_fault_spec_rejects_negative_times() -> None:
    with pytest.raises(HarnessConfigError, match="must be >= 0"):
        FaultSpec.from_dict({"kind": "kill_worker", "at": -1.0})
    with pytest.raises(HarnessConfigError, match="must be >= 0"):
        FaultSpec.from_dict({"kind": "pause_worker", "at": 1.0, "duration": -2})


def test_toxic_needs_a_known_type() -> None:
    with pytest.raises(
        HarnessConfigError, match=re.escape("toxic fault needs params.type")
    ) as info:
        FaultSpec.from_dict(
            {"kind": "toxic", "at": 0, "target": "redis", "params": {"type": "gremlins"}}
        )
    assert "latency" in str(info.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "scale_workers needs params.delta"),
        ({"delta": 0}, "scale_workers needs params.delta"),
        ({"delta": "two"}, "scale_workers needs params.delta"),
        ({"delta": True}, "scale_workers needs params.delta"),
    ],
)
def test_scale_workers_params_are_validated(params: dict[str, object], message: str) -> None:
    with pytest.raises(HarnessConfigError, match=re.escape(message)):
        FaultSpec.from_dict({"kind": "scale_workers", "at": 0, "params": params})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"attempt": 1}, "kill_at_attempt needs params.note_index"),
        ({"note_index": -1, "attempt": 1}, "kill_at_attempt needs params.note_index"),
        ({"note_index": "first", "attempt": 1}, "kill_at_attempt needs params.note_index"),
        ({"note_index": 0}, "kill_at_attempt needs params.attempt"),
        ({"note_index": "any", "attempt": 0}, "kill_at_attempt needs params.attempt"),
        ({"note_index": 0, "attempt": 1, "timeout": 0}, "kill_at_attempt: params.timeout"),
        ({"note_index": 0, "attempt": 1, "colour": "red"}, "unknown params"),
    ],
)
def test_kill_at_attempt_params_are_validated(params: dict[str, object], message: str) -> None:
    with pytest.raises(HarnessConfigError, match=re.escape(message)):
        FaultSpec.from_dict({"kind": "kill_at_attempt", "at": 0, "params": params})


def test_valid_new_fault_specs_are_accepted() -> None:
    FaultSpec.from_dict({"kind": "scale_workers", "at": 0, "duration": 2, "params": {"delta": -1}})
    FaultSpec.from_dict(
        {"kind": "kill_at_attempt", "at": 0, "params": {"note_index": "any", "attempt": 2}}
    )
    FaultSpec.from_dict(
        {"kind": "kill_at_attempt", "at": 0, "params": {"note_index": 3, "attempt": 1}}
    )


@pytest.mark.parametrize("kind", ["kill_worker", "kill_horse", "term_worker", "pause_worker"])
def test_worker_faults_refuse_service_targets(kind: str) -> None:
    with pytest.raises(HarnessConfigError, match=f"fault {kind} needs target 'busy', 'any'"):
        FaultSpec.from_dict({"kind": kind, "at": 1.0, "target": "redis"})


def test_every_kind_is_registered_by_its_class() -> None:
    assert sorted(FAULT_KINDS) == sorted(cls.kind for cls in FAULT_KINDS.values())
    assert {"kill_worker", "toxic", "kill_at_attempt", "restart_service"} <= set(FAULT_KINDS)


def test_term_worker_params_are_validated() -> None:
    with pytest.raises(HarnessConfigError, match=r"term_worker: unknown params \['colour'\]"):
        FaultSpec.from_dict(
            {"kind": "term_worker", "at": 0, "target": "busy", "params": {"colour": 1}}
        )
    with pytest.raises(HarnessConfigError, match=r"term_worker: params\.timeout"):
        FaultSpec.from_dict({"kind": "term_worker", "at": 0, "params": {"timeout": -1}})
    FaultSpec.from_dict({"kind": "term_worker", "at": 0, "params": {"forced": True}})


def test_min_age_of_the_busy_worker_is_validated() -> None:
    with pytest.raises(HarnessConfigError, match=r"pause_worker: params\.min_age"):
        FaultSpec.from_dict(
            {"kind": "pause_worker", "at": 0, "target": "busy", "params": {"min_age": -1}}
        )
    spec = FaultSpec.from_dict(
        {"kind": "kill_worker", "at": 0, "target": "busy", "params": {"min_age": 2.5}}
    )
    assert spec.params["min_age"] == 2.5
