"""Every fault proves it bit: a fault that failed to inject or hit nothing makes a run that
the checker found ``valid`` ``unknown``, with the reason in the result and the report.

No services: a real ScheduleRunner against a stack that has no live worker (so a worker
fault finds nothing to hit), synthetic histories for the checker, and the report writer.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from harness.checker import check
from harness.collector import TraceCollector
from harness.faults import Effect, Fault, FaultSpec, build_fault
from harness.faults.probe import Endpoint, probe
from harness.faults.proof import missed_faults, prove_faults
from harness.faults.witness import client_stall_s, errors_in_window, fate_of_attempts
from harness.schedule import FaultRecord, Schedule, ScheduleRunner
from harness.services.base import Service
from harness.services.ports import free_port
from harness.stack import PipelineStack, StackOptions
from tests.checker.checker_synth import T0, Params, build
from tests.report.report_synth import record as report_record

P = Params()


def _record(effect: Effect, *, kind: str = "kill_worker", error: str | None = None) -> FaultRecord:
    spec = FaultSpec(kind, at=1.0, duration=0.5, target="busy")
    return FaultRecord(spec, "worker-0", T0, T0 + timedelta(seconds=1), error, effect)


def _bit() -> Effect:
    effect = Effect()
    effect.bit("killed worker-0 pid 42 (note 1 attempt 1)", pid=42)
    return effect


def _missed() -> Effect:
    effect = Effect()
    effect.miss("no worker was busy (holding a note in the ledger) within 1 s")
    return effect


def test_a_fault_that_bit_leaves_a_valid_verdict_alone() -> None:
    result = check(build(P, [["ok"], ["kill", "ok"]]), P.config())
    assert result.verdict == "valid", result.reasons
    assert prove_faults(result, [_record(_bit())]) is result


def test_a_fault_that_hit_nothing_makes_a_valid_run_unknown() -> None:
    result = check(build(P, [["ok"], ["ok"]]), P.config())
    assert result.verdict == "valid", result.reasons
    proved = prove_faults(result, [_record(_bit()), _record(_missed())])
    assert proved.verdict == "unknown"
    assert "did not bite: no worker was busy" in proved.reasons[0]
    assert "no worker was busy" in proved.missing_inputs["faults"]
    assert proved.to_dict()["verdict"] == "unknown"


@pytest.mark.parametrize(
    ("effect", "error", "why"),
    [
        (Effect(), None, "recorded no evidence"),
        (_bit(), "inject failed: boom", "inject failed: boom"),
        (_missed(), None, "no worker was busy"),
    ],
)
def test_missed_covers_errors_misses_and_silence(
    effect: Effect, error: str | None, why: str
) -> None:
    record = _record(effect, error=error)
    assert record.missed is not None and why in record.missed
    assert why in missed_faults([record])[0]
    assert record.window().missed == record.missed


def test_an_invalid_run_stays_invalid_and_still_names_the_miss() -> None:
    # Three attempts killed with a budget of three: lost/failed unexpectedly → invalid.
    result = check(build(P, [["kill", "kill", "kill", "kill"]]), P.config())
    assert result.verdict == "invalid", result.reasons
    proved = prove_faults(result, [_record(_missed())])
    assert proved.verdict == "invalid"
    assert any("did not bite" in r for r in proved.reasons)


def _unstarted_stack(tmp_path: Path) -> PipelineStack:
    """A real stack object with no processes (never started): no worker to hit."""
    collector = TraceCollector(tmp_path / "spans.jsonl")
    service: Service = None  # type: ignore[assignment]
    return PipelineStack(
        redis_service=service,
        postgres_service=service,
        collector=collector,
        workdir=tmp_path,
        options=StackOptions(workers=0),
    )


@pytest.mark.parametrize("target", ["any", "worker-3"])
def test_a_worker_fault_with_no_worker_to_hit_is_recorded_as_missed(
    tmp_path: Path, target: str
) -> None:
    stack = _unstarted_stack(tmp_path)
    runner = ScheduleRunner(
        stack, Schedule([FaultSpec("kill_horse", at=0.0, duration=0.1, target=target)], seed=1)
    )
    runner.start()
    runner.join(timeout=10)
    assert runner.done()
    [record] = runner.records
    assert record.error is None  # not an error of the harness: the fault found nothing
    assert record.effect.hit is False
    assert record.missed is not None and "no live worker" in record.missed
    result = check(build(P, [["ok"]]), P.config())
    assert prove_faults(result, runner.records).verdict == "unknown"


def test_the_report_shows_the_miss(tmp_path: Path) -> None:
    from harness.report.model import RunInfo
    from harness.report.writer import write_run_report

    history = build(P, [["ok"]])
    missed = _record(_missed())
    result = prove_faults(check(history, P.config()), [missed])
    scenario = report_record("test_missed_fault", history, [missed], T0)
    scenario.result = result
    now = datetime.now(UTC)
    run_dir = write_run_report(tmp_path, RunInfo("run-1", now, now, "local"), [scenario])
    summary = json.loads((run_dir / "summary.json").read_text())
    [entry] = summary["scenarios"]
    assert entry["verdict"] == "unknown"
    assert entry["faults"][0]["hit"] is False
    assert "no worker was busy" in entry["faults"][0]["missed"]
    assert any("did not bite" in r for r in entry["reasons"])
    html = (run_dir / "index.html").read_text()
    assert "missed: no worker was busy" in html


def test_build_fault_gives_every_fault_an_unjudged_effect(tmp_path: Path) -> None:
    fault = build_fault(
        _unstarted_stack(tmp_path), FaultSpec("proxy_down", at=0, target="redis"), random.Random(1)
    )
    assert fault.effect.hit is None


def test_a_probe_to_a_closed_port_is_refused() -> None:
    result = probe(Endpoint("redis", "127.0.0.1", free_port()), timeout=0.5)
    assert result.outcome == "refused" and result.failed


def test_fate_of_interrupted_attempts_reads_the_ledger() -> None:
    history = build(P, [["kill", "ok"], ["ok"]])
    fate = fate_of_attempts(history, [{"note": 1, "attempt": 1}, {"note": 2, "attempt": 1}])
    assert fate == {"finished": [2], "recovered": [1], "gave_up": [], "unresolved": []}


def test_errors_in_window_counts_client_refusals() -> None:
    history = build(P, [["ok"]])
    ops = [
        {"type": "fail", "time": (T0 + timedelta(seconds=1)).isoformat(), "status_code": 503},
        {"type": "ok", "time": (T0 + timedelta(seconds=1)).isoformat(), "status_code": 202},
        {"type": "ok", "time": (T0 + timedelta(seconds=1)).isoformat(), "status_code": 201},
        {"type": "fail", "time": (T0 + timedelta(seconds=60)).isoformat(), "status_code": 503},
    ]
    counted = errors_in_window(history, ops, T0, T0 + timedelta(seconds=2))
    assert counted["client"] == 2


def _ops(*timeline: tuple[float, str]) -> list[dict[str, object]]:
    return [
        {"type": kind, "time": (T0 + timedelta(seconds=at)).isoformat()} for at, kind in timeline
    ]


def test_client_stall_is_the_longest_unanswered_wait_across_the_window() -> None:
    steady = _ops(*[(t / 10 + d, k) for t in range(40) for d, k in ((0, "invoke"), (0.01, "ok"))])
    assert client_stall_s(steady, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)) < 0.05
    # Behind a pooler: requests sent during the outage are all answered once it is over.
    held = _ops(
        (0.0, "invoke"), (0.01, "ok"),
        (1.0, "invoke"), (1.1, "invoke"), (1.2, "invoke"),
        (3.5, "ok"), (3.5, "ok"), (3.6, "ok"),
        (4.0, "invoke"), (4.01, "fail"),
    )  # fmt: skip
    window = (T0 + timedelta(seconds=1.05), T0 + timedelta(seconds=2.5))
    assert client_stall_s(held, *window) == pytest.approx(2.5)
    # The same stall long before the window does not count.
    later = (T0 + timedelta(seconds=3.8), T0 + timedelta(seconds=5))
    assert client_stall_s(held, *later) == pytest.approx(0.01)


def test_a_scheduled_fault_that_never_ran_makes_the_run_unknown() -> None:
    result = check(build(P, [["ok"]]), P.config())
    ran = _record(_bit())
    never = FaultSpec("proxy_down", at=30.0, duration=1.0, target="redis")
    proved = prove_faults(result, [ran], [ran.spec, never])
    assert proved.verdict == "unknown"
    assert any("proxy_down at 30s never ran" in r for r in proved.reasons), proved.reasons
    assert prove_faults(result, [ran], [ran.spec]) is result


class _Logged(Fault):
    """Logs its operations in order; ``params.block`` seconds make its inject block (as a
    ``busy`` fault waiting for a worker does) and it always bites."""

    kind = "test_logged"
    ops: ClassVar[list[str]] = []

    def inject(self) -> None:
        time.sleep(float(self.spec.params.get("block", 0.0)))
        _Logged.ops.append(f"inject {self.spec.target}")
        self.effect.bit(f"logged {self.spec.target}")

    def heal(self) -> None:
        _Logged.ops.append(f"heal {self.spec.target}")


def test_a_late_schedule_keeps_its_order_heals_before_later_injects(tmp_path: Path) -> None:
    # a blocks for 1 s, so b (due at 0.2 s) and c (due at 0.6 s, after b's heal at 0.5 s)
    # are both overdue when a returns: b must still heal before c is injected.
    _Logged.ops.clear()
    schedule = Schedule(
        [
            FaultSpec("test_logged", at=0.0, duration=0.05, target="a", params={"block": 1.0}),
            FaultSpec("test_logged", at=0.2, duration=0.3, target="b"),
            FaultSpec("test_logged", at=0.6, duration=0.05, target="c"),
        ],
        seed=1,
    )
    runner = ScheduleRunner(_unstarted_stack(tmp_path), schedule)
    runner.start()
    runner.join(timeout=10)
    assert runner.done()
    assert _Logged.ops == ["inject a", "heal a", "inject b", "heal b", "inject c", "heal c"]
    a, b, c = (next(r for r in runner.records if r.target == t) for t in "abc")
    assert (a.end - a.start).total_seconds() >= 1.0 + 0.05, "a blocking inject keeps its duration"
    assert (b.end - b.start).total_seconds() >= 0.3, "a late fault keeps its duration"
    assert (c.start - b.start).total_seconds() >= 0.4 - 0.05, "and its spacing to the next"
