"""``python -m harness.mutation``: run the mutant catalog (``make mutants``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.mutation.catalog import Mutant, load_catalog, select
from harness.mutation.regenerate import regenerate
from harness.mutation.runner import (
    CONTROL_SCENARIO,
    DEFAULT_CATCHER_TIMEOUT_S,
    CatcherRun,
    RunOptions,
    control_run,
    run_mutant,
)
from harness.mutation.table import render
from harness.mutation.workspace import apply_patch, copy_tree


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.mutation",
        description="Apply each mutant of src/ to a temporary copy of the repository, run "
        "its catcher scenarios, and require the checker's verdict to be invalid.",
    )
    p.add_argument("mutants", nargs="*", help="ids or labels to run (default: all)")
    p.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (default: .)")
    p.add_argument("--list", action="store_true", help="print the catalog and exit")
    p.add_argument(
        "--check", action="store_true", help="only check that every patch applies, then exit"
    )
    p.add_argument(
        "--regenerate",
        action="store_true",
        help="rewrite each patch against HEAD (3-way merge; working tree untouched), then exit",
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--timeout", type=float, default=DEFAULT_CATCHER_TIMEOUT_S)
    p.add_argument(
        "--service-budget",
        type=float,
        metavar="SECONDS",
        help="the deadline oracle's per-note budget for every catcher run (default: what the "
        "control run on the unmutated code calibrated)",
    )
    p.add_argument(
        "--no-control",
        action="store_true",
        help=f"skip the control run ({CONTROL_SCENARIO} on the unmutated code)",
    )
    p.add_argument("--keep", action="store_true", help="keep every mutated copy and its logs")
    p.add_argument("--workdir", type=Path, help="where mutated copies go (default: $TMPDIR)")
    return p


def _check_patches(mutants: list[Mutant], repo: Path) -> int:
    failures = 0
    for mutant in mutants:
        with tempfile.TemporaryDirectory(prefix="notepipe-mutant-check-") as tmp:
            tree = copy_tree(repo, Path(tmp) / "repo")
            try:
                apply_patch(mutant, tree)
                print(f"ok     {mutant.label}")
            except HarnessError as exc:
                failures += 1
                print(f"FAILED {exc}")
    return 1 if failures else 0


def _regenerate(mutants: list[Mutant], repo: Path) -> int:
    failures = 0
    for mutant in mutants:
        try:
            changed = regenerate(mutant, repo)
            print(f"{'rewrote' if changed else 'current'} {mutant.patch.name}")
        except HarnessError as exc:
            failures += 1
            print(f"FAILED  {exc}")
    return 1 if failures else 0


def _control(repo: Path, options: RunOptions) -> tuple[bool, float | None]:
    """Run the control: (valid, its service budget). Invalid unmutated code makes every
    mutant result meaningless."""
    run = control_run(repo, options)
    v = run.verdict
    if v is None or v.verdict != "valid":
        said = f"verdict {v.verdict}: {list(v.reasons[:3])}" if v else run.error
        print(
            f"error: the control run ({CONTROL_SCENARIO} on the unmutated code) is not valid "
            f"({said}; log {run.log}); fix that first, mutation results would mean nothing",
            file=sys.stderr,
        )
        return False, None
    budget = f"; service budget {v.service_budget_s:.3f}s per note" if v.service_budget_s else ""
    print(f"control: {CONTROL_SCENARIO} valid on the unmutated code in {run.seconds:.0f}s{budget}")
    return True, v.service_budget_s


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    repo = args.repo.resolve()
    try:
        mutants = select(load_catalog(repo / "mutants"), args.mutants)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for m in mutants:
            print(f"{m.label} [{m.area}] {m.bug}\n    catchers: {', '.join(m.catchers)}")
            print(f"    invariants: {', '.join(m.invariants)}")
            if m.known_gap:
                print(f"    known gap: {m.known_gap}")
        return 0
    if args.check:
        return _check_patches(mutants, repo)
    if args.regenerate:
        return _regenerate(mutants, repo)

    def progress(mutant: Mutant, run: CatcherRun) -> None:
        v = run.verdict
        said = f"{v.verdict} {list(v.violated)} (test {v.outcome})" if v else run.error
        print(f"  {mutant.label} @ {run.nodeid}: {said} in {run.seconds:.0f}s", flush=True)

    started = time.monotonic()
    results = []
    print(f"mutation run: {len(mutants)} mutant(s) of {repo}/src", flush=True)
    options = RunOptions(timeout=args.timeout, workdir=args.workdir, keep=args.keep)
    if args.service_budget is not None:
        options = dataclasses.replace(options, service_budget_s=args.service_budget)
    elif not args.no_control:
        valid, budget = _control(repo, options)
        if not valid:
            return 1
        options = dataclasses.replace(options, service_budget_s=budget)
    for mutant in mutants:
        result = run_mutant(mutant, repo=repo, options=options, on_run=progress)
        print(f"{mutant.label}: {result.status.upper()} ({result.seconds:.0f}s)", flush=True)
        results.append(result)
    wall = time.monotonic() - started
    print()
    print(render(results, wall_s=wall))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"wall_s": round(wall, 1), "mutants": [r.to_dict() for r in results]}, indent=2
            ),
            encoding="utf-8",
        )
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
