"""From scenario records to the run report and the terminal's verdict table."""

from __future__ import annotations

import pickle
import platform
import shlex
import shutil
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.record import ScenarioRecord
from harness.session import NotepipeSession
from notepipe import __version__


def load_records(session: NotepipeSession) -> list[ScenarioRecord]:
    """Every scenario of the run (written by this process or by xdist workers), in the
    order they started, each with pytest's outcome of its test."""
    found: list[ScenarioRecord] = []
    if not session.parts_dir.exists():
        return found
    for path in sorted(session.parts_dir.glob("*.pkl")):
        with open(path, "rb") as fh:
            record = pickle.load(fh)  # noqa: S301 - our own files, written by this run
        found.append(replace(record, outcome=session.outcomes.get(record.nodeid, "unknown")))
    found.sort(key=lambda r: r.started_at)
    return found


def _discard_empty_run(session: NotepipeSession) -> None:
    """A session without scenarios (``pytest tests``) leaves no report behind."""
    run_dir = session.report_root / session.run_id
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {"junit.xml", "parts"}:
        shutil.rmtree(run_dir, ignore_errors=True)


def write_session_report(config: pytest.Config, session: NotepipeSession) -> Path | None:
    records = load_records(session)
    if not records:
        _discard_empty_run(session)
        return None
    from harness.report.model import RunInfo
    from harness.report.writer import write_run_report

    settings = next((r.settings for r in records if r.settings), {})
    run = RunInfo(
        run_id=session.run_id,
        started_at=session.started_at,
        finished_at=datetime.now(UTC),
        backend=session.backend,
        service_versions=session.service_versions or session.versions,
        settings=settings,
        command=shlex.join(["pytest", *config.invocation_params.args]),
        host=platform.node(),
        python=session.python,
        notepipe_version=__version__,
    )
    session.verdicts = [(r.name, r.result.verdict, r.outcome, r.result.counts) for r in records]
    session.margins = {r.name: r.figures.get("deadline_margin_min_s") for r in records}
    jaeger = _jaeger_check(session, records)
    junit_option = getattr(config.option, "xmlpath", None)
    junit = Path(junit_option).resolve() if junit_option else None
    run_dir = write_run_report(
        session.report_root,
        run,
        records,
        # Usually already in place (the plugin points --junitxml there): the writer then only
        # lists it in summary.json and links it from index.html.
        junit_xml=junit if junit is not None and junit.exists() else None,
        jaeger=jaeger,
    )
    session.report_path = run_dir
    return run_dir


def _jaeger_check(session: NotepipeSession, records: list[ScenarioRecord]) -> dict[str, Any] | None:
    """With ``--notepipe-jaeger``: spans forwarded vs spans the run's Jaeger returns."""
    if not session.jaeger_query_url:
        return None
    from harness.jaeger.run_check import forwarding_check, load_forward_stats
    from harness.report.span_files import all_spans

    spans = all_spans(records)
    try:
        check = forwarding_check(
            session.jaeger_query_url,
            {s.trace_id for s in spans},
            len(spans),
            load_forward_stats(session.parts_dir),
        )
    except Exception as exc:  # the report must still be written
        check = {"query_url": session.jaeger_query_url, "error": f"{type(exc).__name__}: {exc}"}
    session.jaeger_check = check
    return check


def print_verdict_table(terminal: Any, session: NotepipeSession) -> None:
    if session.report_error:
        terminal.write_line(
            f"notepipe: the run report could not be written: {session.report_error}", red=True
        )
    verdicts = session.verdicts
    if not verdicts:
        return
    terminal.section("notepipe verdicts", sep="=", bold=True)
    width = max(len(name) for name, *_ in verdicts)
    header = (
        f"{'scenario':<{width}}  verdict  test     notes  completed  failed  recovered  lost  "
        "dup  stuck  margin"
    )
    terminal.write_line(header, bold=True)
    for name, verdict, outcome, counts in verdicts:
        colour = {"valid": {"green": True}, "invalid": {"red": True}}.get(verdict, {"yellow": True})
        terminal.write(f"{name:<{width}}  ")
        terminal.write(f"{verdict:<7}", **colour)
        terminal.write_line(
            f"  {outcome:<7} {counts.get('total', 0):>5}  {counts.get('completed', 0):>9}  "
            f"{counts.get('failed_as_designed', 0) + counts.get('failed_unexpectedly', 0):>6}  "
            f"{counts.get('recovered', 0):>9}  {counts.get('lost', 0):>4}  "
            f"{counts.get('duplicated', 0):>3}  {counts.get('stuck', 0):>5}  "
            f"{_margin(session.margins.get(name))}"
        )
    terminal.write_line(
        "margin: the tightest deadline margin (deadline - terminal time, min over notes)"
    )
    if session.calibration is not None:
        terminal.write_line(f"deadline oracle: {session.calibration.describe()}")
    if session.jaeger_check is not None:
        from harness.jaeger.run_check import describe

        check = session.jaeger_check
        terminal.write_line(
            f"jaeger: check failed: {check['error']}" if "error" in check else describe(check)
        )
    report = session.report_path
    if report is not None:
        terminal.write_line(f"report: {report / 'index.html'}  (also {report.parent / 'latest'})")
    sys.stdout.flush()


def _margin(seconds: float | None) -> str:
    return f"{seconds:>6.1f}s" if seconds is not None else "     -"
