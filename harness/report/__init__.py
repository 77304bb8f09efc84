"""Run reports: ``reports/<run-id>/`` with summary, history, spans and a self-contained page.

``write_run_report(root, run, scenarios)`` is the entry point; the page is
:mod:`harness.report.html` (Jinja2 template + :mod:`harness.report.charts`).
"""

from __future__ import annotations

from harness.record import ScenarioRecord
from harness.report.model import RunInfo, worst_verdict
from harness.report.writer import update_latest, write_run_report

__all__ = ["RunInfo", "ScenarioRecord", "update_latest", "worst_verdict", "write_run_report"]
