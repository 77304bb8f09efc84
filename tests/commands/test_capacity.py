"""``notepipe-harness capacity``: saturation detection on synthetic steps, argument
parsing, and one short real sweep against a local stack."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from harness import cli
from harness.commands.capacity import (
    STEPS,
    Step,
    Sweep,
    parse_counts,
    parse_duration,
    rates,
)
from harness.commands.capacity_report import COLUMNS, rows
from harness.errors import HarnessConfigError


def step(offered: float, throughput: float, grew: int, seconds: float = 10.0) -> Step:
    return Step(
        workers=1,
        offered=offered,
        seconds=seconds,
        throughput=throughput,
        backlog_start=5,
        backlog_end=5 + grew,
        mean_backlog=2.0,
        w_mean=0.5,
    )


def test_a_step_is_saturated_only_when_slow_and_the_backlog_grew() -> None:
    assert not step(10, 10, grew=0).saturated  # keeps up
    assert not step(10, 5, grew=3).saturated  # slow, but the backlog barely grew (<= 10)
    assert step(10, 5, grew=11).saturated  # slow and growing
    assert not step(10, 9.5, grew=50).saturated  # growing, but throughput >= 90 %
    assert step(1, 0.5, grew=4, seconds=1).saturated  # small steps: at least 3 notes


def test_the_knee_is_the_final_run_of_saturated_steps() -> None:
    sweep = Sweep(
        1,
        [
            step(1, 1, 0),
            step(2, 1, 30),  # a lone saturated step (noise) ...
            step(4, 4, 0),  # ... followed by a healthy one
            step(8, 5, 40),
            step(16, 5, 80),
        ],
    )
    assert sweep.saturated_at == 8
    assert sweep.last_healthy is sweep.steps[2]
    assert sweep.capacity == 5
    assert sweep.done


def test_a_sweep_that_never_saturates() -> None:
    sweep = Sweep(2, [step(r, r, 0) for r in (1, 2, 4)])
    assert sweep.saturated_at is None
    assert not sweep.done
    assert sweep.last_healthy is sweep.steps[-1]
    assert rows([sweep])[0][:4] == ("2", "4.0", "not reached", "4.0")
    assert len(rows([sweep])[0]) == len(COLUMNS)


def test_an_empty_sweep_reports_nothing_measured() -> None:
    assert rows([Sweep(1)]) == [("1", "0.0", "not reached", "-", "-", "-", "-", "-", "-")]


def test_little_ratio() -> None:
    s = step(10, 4, 0)
    assert s.little_ratio == pytest.approx(2.0 / (4 * 0.5))
    assert math.isnan(step(10, 0, 0).little_ratio)


def test_rates_ramp_geometrically_from_one_to_the_maximum() -> None:
    ramp = rates(100.0)
    assert len(ramp) == STEPS
    assert ramp[0] == 1 and ramp[-1] == pytest.approx(100.0)
    assert all(b > a for a, b in itertools.pairwise(ramp))
    assert rates(0.5) == [1.0] * STEPS


def test_parse_duration_and_counts() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("2m") == 120
    assert parse_duration(" 1.5S ") == 1.5
    with pytest.raises(HarnessConfigError, match="bad duration 'soon'"):
        parse_duration("soon")
    assert parse_counts("1,2, 4") == [1, 2, 4]
    for bad in ("one", "0,1", ""):
        with pytest.raises(HarnessConfigError, match="--workers"):
            parse_counts(bad)


def test_bad_arguments_exit_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["capacity", "--workers", "two"]) == 2
    assert "--workers takes counts like 1,2,4, not 'two'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_short_real_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One worker, a 5 s ramp up to 4 posts/s: far below capacity, so nothing saturates
    and every offered post is accepted; the table, JSON and plot are written."""
    code = cli.main(
        [
            "capacity",
            "--workers",
            "1",
            "--duration",
            "5s",
            "--max-rate",
            "4",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    (json_path,) = tmp_path.glob("capacity-*.json")
    (png,) = tmp_path.glob("capacity-*.png")
    assert png.stat().st_size > 1000
    (sweep,) = json.loads(json_path.read_text())
    assert sweep["workers"] == 1
    assert sweep["saturated_at"] is None
    steps = sweep["steps"]
    assert len(steps) == STEPS
    offered = sum(int(s["offered"] * s["seconds"]) for s in steps)
    assert offered > 5
    assert sum(s["posted"] for s in steps) == offered
    assert sum(s["post_errors"] for s in steps) == 0
    assert sweep["capacity"] > 0
    assert "notepipe capacity" in capsys.readouterr().out
