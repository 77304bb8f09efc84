"""Run the catalog: for each mutant, a patched copy and its catcher scenarios."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError
from harness.mutation.catalog import Mutant
from harness.mutation.verdicts import ScenarioVerdict, read_verdict
from harness.mutation.workspace import (
    copy_tree,
    mutant_env,
    prepare,
    read_import_log,
    verify_mutant_ran,
)

Status = Literal["killed", "survived", "error"]

#: A catcher run longer than this is stopped (the scenarios' own timeout is 300 s).
DEFAULT_CATCHER_TIMEOUT_S = 600.0
STOP_GRACE_S = 60.0
#: Run first on the unmutated copy: it must be valid, and it fixes the deadline oracle's
#: service budget for every mutant (a mutant must not calibrate its own oracle).
CONTROL_SCENARIO = "scenarios/test_baseline.py::test_baseline"


@dataclass(frozen=True)
class RunOptions:
    python: str = sys.executable
    workdir: Path | None = None
    timeout: float = DEFAULT_CATCHER_TIMEOUT_S
    keep: bool = False
    service_budget_s: float | None = None
    """Passed as ``--notepipe-service-budget`` to every catcher run when set."""


@dataclass(frozen=True)
class CatcherRun:
    nodeid: str
    seconds: float
    verdict: ScenarioVerdict | None
    error: str | None = None
    log: Path | None = None


@dataclass
class MutantResult:
    mutant: Mutant
    runs: list[CatcherRun] = field(default_factory=list)
    error: str | None = None
    """Why the mutant could not be judged (patch does not apply, mutated code did not run)."""
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "error"
        return "killed" if any(r.verdict and r.verdict.killed for r in self.runs) else "survived"

    @property
    def failed(self) -> bool:
        """Fails the mutation run: not killed, and not a documented known gap that survived."""
        if self.status == "killed":
            return False
        return not (self.status == "survived" and self.mutant.known_gap)

    @property
    def deciding_run(self) -> CatcherRun | None:
        """The run that killed the mutant, else the last run."""
        for run in self.runs:
            if run.verdict is not None and run.verdict.killed:
                return run
        return self.runs[-1] if self.runs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mutant": self.mutant.label,
            "area": self.mutant.area,
            "bug": self.mutant.bug,
            "expected_catchers": list(self.mutant.catchers),
            "expected_invariants": list(self.mutant.invariants),
            "status": self.status,
            "known_gap": self.mutant.known_gap,
            "error": self.error,
            "seconds": round(self.seconds, 1),
            "runs": [
                {
                    "catcher": r.nodeid,
                    "seconds": round(r.seconds, 1),
                    "verdict": r.verdict.verdict if r.verdict else None,
                    "test_outcome": r.verdict.outcome if r.verdict else None,
                    "violated": list(r.verdict.violated) if r.verdict else [],
                    "reasons": list(r.verdict.reasons[:5]) if r.verdict else [],
                    "error": r.error,
                    "log": str(r.log) if r.log else None,
                }
                for r in self.runs
            ],
        }


def pytest_command(
    python: str, nodeid: str, report_dir: Path, *, service_budget_s: float | None = None
) -> list[str]:
    budget = [] if service_budget_s is None else [f"--notepipe-service-budget={service_budget_s}"]
    return [
        python,
        "-m",
        "pytest",
        nodeid,
        "-p",
        "no:cacheprovider",
        "--notepipe-report-dir",
        str(report_dir),
        "-q",
        "--no-header",
        "-rN",
        *budget,
    ]


def _run_pytest(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, timeout: float
) -> str | None:
    """Run one catcher; return an error text if it had to be stopped."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return f"stopped after {timeout:.0f}s (catcher timeout)"
        except BaseException:
            _stop(proc)
            raise
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the harness reaps its stack on it), then SIGKILL the group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _run_catcher(
    nodeid: str, tree: Path, base: Path, index: int, env: Mapping[str, str], options: RunOptions
) -> CatcherRun:
    report_dir = tree / "reports" / f"catcher-{index}"
    log = base / f"catcher-{index}.log"
    started = time.monotonic()
    cmd = pytest_command(
        options.python, nodeid, report_dir, service_budget_s=options.service_budget_s
    )
    error = _run_pytest(cmd, cwd=tree, env=env, log=log, timeout=options.timeout)
    verdict: ScenarioVerdict | None = None
    try:
        verdict = read_verdict(report_dir, nodeid)
    except HarnessError as exc:
        error = f"{error}; {exc}" if error else str(exc)
    return CatcherRun(nodeid, time.monotonic() - started, verdict, error, log)


def control_run(repo: Path, options: RunOptions) -> CatcherRun:
    """Run :data:`CONTROL_SCENARIO` on an unmutated copy of ``repo``."""
    base = _scratch_dir("notepipe-mutant-control-", options)
    tree = copy_tree(repo, base / "repo")
    env = mutant_env(os.environ, tree, {}, base / "imports.jsonl")
    try:
        return _run_catcher(CONTROL_SCENARIO, tree, base, 0, env, options)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def run_mutant(
    mutant: Mutant,
    *,
    repo: Path,
    options: RunOptions | None = None,
    on_run: Callable[[Mutant, CatcherRun], None] | None = None,
) -> MutantResult:
    """Copy ``repo``, apply ``mutant``, run its catchers until one says ``invalid``."""
    options = options or RunOptions()
    started = time.monotonic()
    result = MutantResult(mutant)
    base = _scratch_dir(f"notepipe-mutant-{mutant.id}-", options)
    tree = base / "repo"
    try:
        try:
            digests = prepare(mutant, repo, tree)
        except HarnessError as exc:
            result.error = str(exc)
            return result
        import_log = base / "imports.jsonl"
        env = mutant_env(os.environ, tree, digests, import_log)
        for i, nodeid in enumerate(mutant.catchers, start=1):
            run = _run_catcher(nodeid, tree, base, i, env, options)
            result.runs.append(run)
            if on_run is not None:
                on_run(mutant, run)
            if run.verdict is not None and run.verdict.killed:
                break
        problems = verify_mutant_ran(read_import_log(import_log), digests, tree)
        if problems:
            result.error = "mutated code did not run: " + "; ".join(problems)
        return result
    finally:
        result.seconds = time.monotonic() - started
        if not options.keep and result.status == "killed":
            shutil.rmtree(base, ignore_errors=True)
        elif not options.keep:
            # Keep the logs and reports of a survivor or an error; drop the tree.
            if (tree / "reports").is_dir():
                shutil.move(tree / "reports", base / "reports")
            shutil.rmtree(tree, ignore_errors=True)


def _scratch_dir(prefix: str, options: RunOptions) -> Path:
    """A new directory for one mutated copy, under ``--workdir`` (created if missing)."""
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=options.workdir))
