"""``notepipe-harness chaos`` reads the scenarios' schedule format (plus the former
live-stack spellings) and refuses a bad schedule before handing anything to a stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.commands.chaos import load_schedule, record_line, run_chaos
from harness.errors import HarnessConfigError
from harness.faults import FaultSpec
from harness.schedule import FaultRecord

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(data))
    return path


def test_former_spellings_become_fault_classes(tmp_path: Path) -> None:
    schedule = load_schedule(
        write(
            tmp_path,
            [
                {"kind": "restart_redis", "at": 3, "duration": 1},
                {"kind": "pause_postgres", "at": 1, "duration": 2},
                {"kind": "kill_horse", "at": 2, "target": "busy"},
            ],
        ),
        seed=7,
    )
    assert [(s.kind, s.target, s.at) for s in schedule.faults] == [
        ("pause_service", "postgres", 1.0),
        ("kill_horse", "busy", 2.0),
        ("restart_service", "redis", 3.0),
    ]
    assert schedule.seed == 7


def test_the_example_schedule_is_valid() -> None:
    schedule = load_schedule(ROOT / "loadtests" / "faults.example.json", seed=0)
    assert len(schedule.faults) == 6


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"kind": "pause_api", "at": 1}, "unknown fault kind 'pause_api'"),
        ({"kind": "pause_worker", "at": 1, "target": "all"}, "not 'all'"),
        ({"kind": "pause_service", "at": 1, "target": "worker-0"}, "'redis' or 'postgres'"),
        ({"at": 1}, "with a 'kind'"),
    ],
)
def test_bad_faults_are_refused(tmp_path: Path, item: dict[str, object], message: str) -> None:
    with pytest.raises(HarnessConfigError, match=message):
        load_schedule(write(tmp_path, [item]), seed=0)


def test_no_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(HarnessConfigError, match="notepipe-harness stack up --state-dir"):
        run_chaos(tmp_path, write(tmp_path, []), None)


def test_record_line_uses_unix_seconds() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    line = record_line(FaultRecord(FaultSpec("kill_horse", at=1), "worker-0", start, end))
    assert (line["start"], line["end"], line["ok"]) == (start.timestamp(), end.timestamp(), True)
    assert line["target"] == "worker-0"
