"""harness.mutation: reading verdicts from summary.json, the sanity check, the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.mutation.catalog import Mutant
from harness.mutation.runner import CatcherRun, MutantResult
from harness.mutation.table import render
from harness.mutation.verdicts import NoVerdict, ScenarioVerdict, parse_summary, read_verdict
from harness.mutation.workspace import (
    SITE_DIR,
    SITECUSTOMIZE,
    ImportRecord,
    mutant_env,
    read_import_log,
    verify_mutant_ran,
)

NODE = "scenarios/test_baseline.py::test_baseline"


def _scenario(verdict: str, violations: list[str], outcome: str = "failed") -> dict[str, Any]:
    return {
        "name": "test_baseline",
        "nodeid": NODE,
        "outcome": outcome,
        "verdict": verdict,
        "invariants": {"single_completion": "violated" if violations else "ok"},
        "violations": [{"invariant": v, "note_id": 1, "message": "m"} for v in violations],
        "reasons": ["r"],
    }


def test_killed_needs_invalid_and_a_named_invariant() -> None:
    [v] = parse_summary({"scenarios": [_scenario("invalid", ["b", "a", "b"])]})
    assert v.killed
    assert v.violated == ("b", "a", "single_completion")  # most violations first
    [v] = parse_summary({"scenarios": [_scenario("invalid", [])]})
    assert not v.killed  # invalid with no invariant named
    [v] = parse_summary({"scenarios": [_scenario("valid", [], outcome="failed")]})
    assert not v.killed  # the scenario's own assert failed; the checker said valid
    [v] = parse_summary({"scenarios": [_scenario("unknown", [])]})
    assert not v.killed


def test_read_verdict_finds_the_run_and_the_scenario(tmp_path: Path) -> None:
    with pytest.raises(NoVerdict, match="no reports"):
        read_verdict(tmp_path, NODE)
    run = tmp_path / "20261202T080442Z-1"
    run.mkdir()
    scenario = _scenario("invalid", ["traces_agree"]) | {"config": {"service_budget_s": 0.03}}
    (run / "summary.json").write_text(json.dumps({"scenarios": [scenario]}))
    (tmp_path / "latest").mkdir()
    (tmp_path / "latest" / "summary.json").write_text("{}")
    verdict = read_verdict(tmp_path, NODE)
    assert verdict.violated[0] == "traces_agree"
    assert verdict.service_budget_s == 0.03
    with pytest.raises(NoVerdict, match="no verdict for scenarios/other"):
        read_verdict(tmp_path, "scenarios/other.py::test_x")


def _records(tree: Path, digest: str, argv0: str) -> list[ImportRecord]:
    return [ImportRecord(1, (argv0, "worker"), "notepipe.store.ledger", str(tree / "m.py"), digest)]


def test_sanity_check_needs_a_pipeline_process_running_the_patched_file(tmp_path: Path) -> None:
    digests = {"notepipe.store.ledger": "d1"}
    cli = str(tmp_path / "src/notepipe/cli.py")
    assert verify_mutant_ran(_records(tmp_path, "d1", cli), digests, tmp_path) == []
    [problem] = verify_mutant_ran(_records(tmp_path, "d1", "pytest"), digests, tmp_path)
    assert "no API, worker or reconciler process" in problem
    assert any(
        "without the patch" in p
        for p in verify_mutant_ran(_records(tmp_path, "d0", cli), digests, tmp_path)
    )
    outside = _records(Path("/elsewhere"), "d1", cli)
    assert any(
        "outside the mutated copy" in p for p in verify_mutant_ran(outside, digests, tmp_path)
    )
    assert verify_mutant_ran([], digests, tmp_path)


def test_sitecustomize_records_imports_in_subprocesses(tmp_path: Path) -> None:
    """The real mechanism: PYTHONPATH puts the copy first; its sitecustomize logs imports."""
    tree = tmp_path / "tree"
    (tree / "src" / "mutpkg").mkdir(parents=True)
    (tree / "src" / "mutpkg" / "__init__.py").write_text("")
    (tree / "src" / "mutpkg" / "mod.py").write_text("X = 1\n")
    (tree / SITE_DIR).mkdir()
    (tree / SITE_DIR / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "imports.jsonl"
    env = mutant_env(dict(os.environ), tree, {"mutpkg.mod": "x"}, log)
    child = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import mutpkg.mod'])"
    subprocess.run([sys.executable, "-c", child], env=env, check=True)
    [record] = read_import_log(log)
    assert record.module == "mutpkg.mod"
    assert record.origin == str(tree / "src" / "mutpkg" / "mod.py")
    assert len(record.sha256) == 64


def _result(
    label: str,
    verdicts: list[tuple[str, tuple[str, ...]]],
    error: str | None = None,
    known_gap: str | None = None,
) -> MutantResult:
    mutant = Mutant(
        id=label[:2],
        name=label[3:],
        area="fencing",
        bug="b",
        patch=Path("p"),
        catchers=tuple(f"scenarios/t.py::test_{i}" for i in range(len(verdicts) or 1)),
        invariants=("single_completion",),
        known_gap=known_gap,
    )
    runs = [
        CatcherRun(f"scenarios/t.py::test_{i}", 1.0, ScenarioVerdict("n", v, "failed", inv, ()))
        for i, (v, inv) in enumerate(verdicts)
    ]
    return MutantResult(mutant, runs, error, seconds=42.0)


def test_table_rows_and_score() -> None:
    results = [
        _result("01-killed", [("valid", ()), ("invalid", ("traces_agree",))]),
        _result("02-survivor", [("valid", ())]),
        _result("03-broken", [], error="mutant 03: patch does not apply to src/x.py"),
    ]
    assert [r.status for r in results] == ["killed", "survived", "error"]
    text = render(results, wall_s=100)
    lines = text.splitlines()
    assert lines[0].split() == [
        "mutant",
        "expected",
        "catcher",
        "verdict",
        "invariant(s)",
        "result",
        "time",
    ]
    killed = next(line for line in lines if line.startswith("01-killed"))
    assert "invalid @test_1" in killed
    assert "traces_agree (expected single_completion)" in killed
    assert "42s" in killed
    assert "SURVIVED" in next(line for line in lines if line.startswith("02-survivor"))
    assert "killed 1/3; survived: 02-survivor; could not judge: 03-broken; wall time 100s" in text
    assert "patch does not apply" in text


def test_a_known_gap_survives_without_failing_the_run_and_says_when_it_is_killed() -> None:
    gap = _result("05-gap", [("valid", ())], known_gap="the fault excuses it")
    assert gap.status == "survived" and not gap.failed
    text = render([gap])
    assert "SURVIVED (known gap)" in text
    assert "known gaps (survive, documented): 05-gap" in text
    assert "05-gap known gap: the fault excuses it" in text
    fixed = _result("05-gap", [("invalid", ("x",))], known_gap="the fault excuses it")
    assert not fixed.failed
    assert "drop its known_gap" in render([fixed])
    broken = _result("05-gap", [], error="patch does not apply", known_gap="why")
    assert broken.failed  # a known gap must still apply and run
    assert _result("02-x", [("valid", ())]).failed
