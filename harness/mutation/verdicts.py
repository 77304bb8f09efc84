"""Read a scenario run's verdicts from its machine-readable report (``summary.json``)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


class NoVerdict(HarnessError):
    """The scenario run wrote no usable ``summary.json``."""


@dataclass(frozen=True)
class ScenarioVerdict:
    """What the checker concluded about one scenario of a run."""

    nodeid: str
    verdict: str
    outcome: str
    """pytest's outcome of the scenario test (its own asserts); not the checker's verdict."""
    violated: tuple[str, ...]
    """Invariants with at least one violation, most violations first."""
    reasons: tuple[str, ...]
    service_budget_s: float | None = None
    """The deadline oracle's per-note budget the run used (``config.service_budget_s``)."""

    @property
    def killed(self) -> bool:
        """The checker said ``invalid`` and named the invariant(s) that broke."""
        return self.verdict == "invalid" and bool(self.violated)


def _violated(scenario: dict[str, Any]) -> tuple[str, ...]:
    counts = Counter(
        str(v["invariant"])
        for v in scenario.get("violations", [])
        if isinstance(v, dict) and v.get("invariant")
    )
    marked = [name for name, state in scenario.get("invariants", {}).items() if state == "violated"]
    for name in marked:
        counts.setdefault(name, 0)
    return tuple(name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def parse_summary(data: dict[str, Any]) -> list[ScenarioVerdict]:
    """Per-scenario verdicts from a parsed ``summary.json``."""
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, list):
        raise NoVerdict("summary.json has no 'scenarios' list (not a notepipe run summary?)")
    out = []
    for s in scenarios:
        budget = (s.get("config") or {}).get("service_budget_s")
        out.append(
            ScenarioVerdict(
                nodeid=str(s.get("nodeid") or s.get("name")),
                verdict=str(s.get("verdict", "unknown")),
                outcome=str(s.get("outcome", "?")),
                violated=_violated(s),
                reasons=tuple(str(r) for r in s.get("reasons", [])),
                service_budget_s=float(budget) if isinstance(budget, int | float) else None,
            )
        )
    return out


def find_summary(report_dir: Path) -> Path:
    """The ``summary.json`` of the single run written under ``report_dir``."""
    runs = sorted(p for p in report_dir.glob("*/summary.json") if p.parent.name != "latest")
    if not runs:
        raise NoVerdict(
            f"no reports/<run-id>/summary.json under {report_dir}: the scenario run ended "
            "before the harness wrote its report (see the run's output)"
        )
    return runs[-1]


def read_verdict(report_dir: Path, nodeid: str) -> ScenarioVerdict:
    """The verdict of scenario ``nodeid`` in the run under ``report_dir``."""
    path = find_summary(report_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoVerdict(f"{path}: unreadable ({exc})") from exc
    verdicts = parse_summary(data)
    for v in verdicts:
        if v.nodeid == nodeid:
            return v
    names = [v.nodeid for v in verdicts]
    raise NoVerdict(f"{path}: no verdict for {nodeid} (scenarios in the report: {names})")
