"""For ``--notepipe-jaeger``: spans forwarded to the run's Jaeger vs spans Jaeger returns.

Each process's trace collector writes what its forwarder delivered into the run's
``parts/`` folder (:func:`save_forward_stats`); at the end the controller adds
them up and asks Jaeger for every trace of the report (:func:`forwarding_check`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.collector.forwarder import ForwarderStats
from harness.jaeger.query import JaegerQuery

_PREFIX = "forward-"


def save_forward_stats(parts_dir: Path, stats: ForwarderStats) -> Path:
    """Write this process's forwarder counts (``parts/forward-<pid>.json``)."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    target = parts_dir / f"{_PREFIX}{os.getpid()}.json"
    data = {
        "requests": stats.forwarded,
        "spans": stats.spans,
        "dropped_requests": stats.dropped,
        "failed_requests": stats.errors,
        "lost_spans": stats.lost_spans,
        "last_error": stats.last_error,
    }
    target.write_text(json.dumps(data) + "\n", encoding="utf-8")
    return target


def load_forward_stats(parts_dir: Path) -> dict[str, Any]:
    """The sum of every process's forwarder counts (the last error kept)."""
    total: dict[str, Any] = {
        "requests": 0,
        "spans": 0,
        "dropped_requests": 0,
        "failed_requests": 0,
        "lost_spans": 0,
        "last_error": "",
    }
    for path in sorted(parts_dir.glob(f"{_PREFIX}*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, value in data.items():
            if key == "last_error":
                total[key] = value or total[key]
            else:
                total[key] += int(value)
    return total


def forwarding_check(
    query_url: str, trace_ids: Iterable[str], report_spans: int, forwarded: dict[str, Any]
) -> dict[str, Any]:
    """Ask Jaeger for every trace of the report; count what it returns."""
    with JaegerQuery(query_url) as jaeger:
        count = jaeger.count_spans(trace_ids)
    return {
        "query_url": query_url,
        "spans_forwarded": forwarded["spans"],
        "spans_lost_forwarding": forwarded["lost_spans"],
        "forward_errors": forwarded["failed_requests"] + forwarded["dropped_requests"],
        "last_forward_error": forwarded["last_error"],
        "report_spans": report_spans,
        "traces": count.traces_asked,
        "traces_found": count.traces_found,
        "spans_returned": count.spans,
        "missing_traces": list(count.missing_traces[:20]),
    }


def describe(check: dict[str, Any]) -> str:
    """One line for the terminal."""
    line = (
        f"jaeger: {check['spans_forwarded']} spans forwarded, Jaeger returned "
        f"{check['spans_returned']} spans in {check['traces_found']}/{check['traces']} of the "
        f"report's traces ({check['report_spans']} spans in the report)"
    )
    if check["spans_lost_forwarding"]:
        line += f"; {check['spans_lost_forwarding']} spans lost forwarding"
        if check["last_forward_error"]:
            line += f" (last error: {check['last_forward_error']})"
    return line
