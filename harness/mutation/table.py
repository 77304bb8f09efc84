"""The mutation table: one row per mutant, and the score line."""

from __future__ import annotations

from collections.abc import Sequence

from harness.mutation.runner import MutantResult

HEADERS = ("mutant", "expected catcher", "verdict", "invariant(s)", "result", "time")


def _scenario(nodeid: str) -> str:
    """``scenarios/test_pause.py::test_paused_worker_is_fenced`` → ``test_paused_worker_is_fenced``."""
    return nodeid.rsplit("::", 1)[-1]


def row(result: MutantResult) -> tuple[str, ...]:
    run = result.deciding_run
    verdict = run.verdict if run is not None else None
    catchers = ", ".join(_scenario(c) for c in result.mutant.catchers)
    if verdict is not None:
        fired = ", ".join(verdict.violated) or "-"
        expected = set(result.mutant.invariants)
        if verdict.violated and not expected & set(verdict.violated):
            fired += f" (expected {', '.join(result.mutant.invariants)})"
        shown = verdict.verdict
        if run is not None and len(result.mutant.catchers) > 1:
            shown += f" @{_scenario(run.nodeid)}"
    else:
        fired, shown = "-", "-"
    status = result.status.upper() if result.status != "killed" else "killed"
    if result.mutant.known_gap and result.status == "survived":
        status += " (known gap)"
    return (result.mutant.label, catchers, shown, fired, status, f"{result.seconds:.0f}s")


def render(results: Sequence[MutantResult], *, wall_s: float | None = None) -> str:
    rows = [HEADERS, *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    killed = sum(1 for r in results if r.status == "killed")
    score = f"killed {killed}/{len(results)}"
    survivors = [r.mutant.label for r in results if r.status == "survived" and r.failed]
    gaps = [r.mutant.label for r in results if r.status == "survived" and not r.failed]
    errors = [r.mutant.label for r in results if r.status == "error"]
    if survivors:
        score += f"; survived: {', '.join(survivors)}"
    if gaps:
        score += f"; known gaps (survive, documented): {', '.join(gaps)}"
    if errors:
        score += f"; could not judge: {', '.join(errors)}"
    if wall_s is not None:
        score += f"; wall time {wall_s:.0f}s"
    lines.append(score)
    for r in results:
        if r.mutant.known_gap and r.status == "survived":
            lines.append(f"{r.mutant.label} known gap: {r.mutant.known_gap}")
        elif r.mutant.known_gap:
            lines.append(f"{r.mutant.label} is {r.status} now: drop its known_gap from the catalog")
        if r.error:
            lines.append(f"{r.mutant.label}: {r.error}")
        for run in r.runs:
            if run.error:
                lines.append(
                    f"{r.mutant.label} @ {_scenario(run.nodeid)}: {run.error} (log: {run.log})"
                )
    return "\n".join(lines)
