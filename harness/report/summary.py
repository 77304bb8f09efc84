"""``summary.json``: the run's verdict and, per scenario, what the checker concluded."""

from __future__ import annotations

from typing import Any

from harness.checker.classify import OK_CLASSES, NoteClass
from harness.record import ScenarioRecord
from harness.report.history_log import iso
from harness.report.model import RunInfo, worst_verdict
from harness.report.span_files import HOW_TO_OPEN, SpanFiles
from harness.report.stats import latency

SCHEMA_VERSION = 1


def scenario_summary(record: ScenarioRecord) -> dict[str, Any]:
    result = record.result
    check = result.to_dict()
    check.pop("notes", None)  # per-note detail for every note: re-derivable from history.jsonl
    flagged = {
        str(n): c.to_dict()
        for n, c in sorted(result.classifications.items())
        if c.note_class not in OK_CLASSES and c.note_class is not NoteClass.IN_FLIGHT
    }
    return {
        "name": record.name,
        "nodeid": record.nodeid,
        "outcome": record.outcome,
        "verdict": result.verdict,
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
        "duration_s": round(record.duration_s, 3),
        "seed": record.seed,
        "schedule": record.schedule.to_list(),
        "faults": [
            {
                "kind": w.kind,
                "target": w.target,
                "start": iso(w.start),
                "end": iso(w.end),
                "duration_s": round((w.end - w.start).total_seconds(), 6),
                "hit": w.missed is None,
                "effect": w.effect,
                "missed": w.missed,
                "evidence": dict(w.evidence),
            }
            for w in record.windows
        ],
        "counts": check.pop("counts"),
        "reasons": check.pop("reasons"),
        "invariants": check.pop("invariants"),
        "violations": check.pop("violations"),
        "latency_s": latency(record.history).to_dict(),
        "figures": record.figures,
        "spans": len(record.spans),
        "client_ops": len(record.client_ops),
        "flagged_notes": flagged,
        **{k: v for k, v in check.items() if k != "verdict"},
    }


def run_summary(
    run: RunInfo, scenarios: list[ScenarioRecord], files: SpanFiles | None = None
) -> dict[str, Any]:
    files = files or SpanFiles()
    verdicts = [s.result.verdict for s in scenarios]
    entries = [scenario_summary(s) for s in scenarios]
    for entry, name in zip(entries, files.scenarios, strict=False):
        entry["jaeger_file"] = name
    return {
        "schema": SCHEMA_VERSION,
        "verdict": worst_verdict(verdicts),
        "verdicts": {v: verdicts.count(v) for v in ("valid", "unknown", "invalid")},
        "run": run.to_dict(),
        "scenarios": entries,
        "files": {
            "history": "history.jsonl",
            "spans_otlp": files.otlp,
            "jaeger": files.jaeger,
            "jaeger_scenarios": list(files.scenarios),
            "html": "index.html",
        },
        "how_to_open": dict(HOW_TO_OPEN),
    }
