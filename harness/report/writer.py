"""Write one run's report directory, and refresh ``<root>/latest`` as a copy of it.

``<root>/<run_id>/``: ``summary.json``, ``history.jsonl``, the span files
(``spans.otlp.jsonl.gz``, ``jaeger.json.gz``, ``jaeger/NN-<scenario>.json``: see
:mod:`harness.report.span_files`), ``junit.xml`` (when pytest wrote one) and ``index.html``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from harness.record import ScenarioRecord
from harness.report.history_log import write_history_jsonl
from harness.report.html import render_index
from harness.report.model import RunInfo
from harness.report.span_files import all_spans, write_span_files
from harness.report.summary import run_summary

LATEST = "latest"
#: Left out of ``latest``: the per-scenario pickles the plugin collects, and temp files.
_NOT_COPIED = shutil.ignore_patterns("parts", "*.tmp")


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["all_spans", "update_latest", "write_run_report"]


def write_run_report(
    root: Path,
    run: RunInfo,
    scenarios: list[ScenarioRecord],
    *,
    junit_xml: Path | None = None,
    jaeger: dict[str, Any] | None = None,
) -> Path:
    """Write ``root/<run_id>/`` and replace ``root/latest`` with a copy; return the run dir.

    ``jaeger``: the ``--notepipe-jaeger`` check (spans forwarded vs returned), if run.
    """
    run_dir = root / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    files = write_span_files(run_dir, scenarios)
    summary = run_summary(run, scenarios, files)
    if jaeger is not None:
        summary["jaeger"] = jaeger
    if junit_xml is not None:
        target = run_dir / "junit.xml"
        if not (target.exists() and junit_xml.samefile(target)):  # pytest may write it in place
            shutil.copyfile(junit_xml, target)
        summary["files"]["junit"] = "junit.xml"
    _write_text(
        run_dir / "summary.json",
        json.dumps(summary, indent=2, default=str, ensure_ascii=False) + "\n",
    )
    write_history_jsonl(scenarios, run_dir / "history.jsonl")
    html = render_index(run, scenarios, junit=junit_xml is not None, files=files, jaeger=jaeger)
    _write_text(run_dir / "index.html", html)
    update_latest(root, run_dir)
    return run_dir


def update_latest(root: Path, run_dir: Path) -> Path:
    """Copy ``run_dir`` to ``root/latest`` (a real copy, so it archives): build it beside,
    then swap it in with renames, so ``latest`` is never half written."""
    latest = root / LATEST
    staging = root / f".{LATEST}.{os.getpid()}.new"
    retired = root / f".{LATEST}.{os.getpid()}.old"
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(run_dir, staging, ignore=_NOT_COPIED)
    try:
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.exists():
            latest.rename(retired)
        staging.rename(latest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return latest
