"""``python -m harness.mutation``: run the mutant catalog (``make mutants``)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.mutation.catalog import Mutant, load_catalog, select
from harness.mutation.regenerate import regenerate
from harness.mutation.runner import DEFAULT_CATCHER_TIMEOUT_S, CatcherRun, run_mutant
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
    for mutant in mutants:
        result = run_mutant(
            mutant,
            repo=repo,
            workdir=args.workdir,
            timeout=args.timeout,
            keep=args.keep,
            on_run=progress,
        )
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
    return 0 if all(r.status == "killed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
