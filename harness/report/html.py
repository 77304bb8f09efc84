"""``index.html``: one self-contained page (inline CSS and SVG) rendered with Jinja2.

The template ships as package data (``harness/report/templates``) and is read via
:mod:`importlib.resources`; autoescaping is on, since note errors come from users.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from harness.checker.classify import NoteClass
from harness.checker.history import FaultWindow, LedgerEvent
from harness.checker.invariants import INVARIANTS
from harness.record import ScenarioRecord
from harness.report import charts
from harness.report.model import RunInfo, worst_verdict
from harness.report.span_files import HOW_TO_OPEN, SpanFiles
from harness.report.stats import flagged_notes, latency, throughput
from harness.spans import SpanRecord

TEMPLATE = "index.html.j2"
MAX_WATERFALLS = 20
MAX_REASONS = 200
#: Outcome table order, and how a non-zero count reads.
CLASS_TONES: tuple[tuple[NoteClass, str], ...] = (
    (NoteClass.COMPLETED, "good"),
    (NoteClass.RECOVERED, "good"),
    (NoteClass.FAILED_AS_DESIGNED, "good"),
    (NoteClass.FAILED_UNEXPECTEDLY, "bad"),
    (NoteClass.LOST, "bad"),
    (NoteClass.DUPLICATED, "bad"),
    (NoteClass.STUCK, "bad"),
    (NoteClass.IN_FLIGHT, "warn"),
)
_DESCRIPTIONS = {i.name: i.description for i in INVARIANTS}


@cache
def _environment() -> jinja2.Environment:
    source = resources.files("harness.report").joinpath("templates", TEMPLATE).read_text("utf-8")
    env = jinja2.Environment(
        loader=jinja2.DictLoader({TEMPLATE: source}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seconds"] = charts.fmt_seconds
    env.filters["when"] = _when
    return env


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _flatten(figures: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, float):
            yield name, f"{value:.4g}"
        else:
            yield name, str(value)


@dataclass(frozen=True)
class NotePanel:
    note: Any  # stats.FlaggedNote
    chart: Markup | None
    span_count: int
    faults: list[FaultWindow]


def _overlapping(
    faults: tuple[FaultWindow, ...], spans: list[SpanRecord], events: list[LedgerEvent]
) -> list[FaultWindow]:
    times = [e.at for e in events]
    times += [datetime.fromtimestamp(s.start_ns / 1e9, UTC) for s in spans]
    times += [datetime.fromtimestamp(s.end_ns / 1e9, UTC) for s in spans]
    if not times:
        return []
    lo, hi = min(times), max(times)
    return [w for w in faults if w.start <= hi and w.end >= lo]


def _spans_by_key(
    spans: Iterable[SpanRecord],
) -> tuple[dict[str, list[SpanRecord]], dict[int, list[SpanRecord]]]:
    by_trace: dict[str, list[SpanRecord]] = {}
    by_note: dict[int, list[SpanRecord]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
        if span.note_id is not None:
            by_note.setdefault(span.note_id, []).append(span)
    return by_trace, by_note


def _note_panels(record: ScenarioRecord) -> tuple[list[NotePanel], int]:
    flagged = flagged_notes(record)
    by_trace, by_note = _spans_by_key(record.spans)
    panels = []
    for note in flagged[:MAX_WATERFALLS]:
        found = {(s.trace_id, s.span_id): s for t in note.trace_ids for s in by_trace.get(t, [])}
        found.update({(s.trace_id, s.span_id): s for s in by_note.get(note.note_id, [])})
        events = [e for e in record.history.events if e.note_id == note.note_id]
        spans = sorted(found.values(), key=lambda s: s.start_ns)
        chart = charts.waterfall(spans, events, record.windows) if spans or events else None
        panels.append(
            NotePanel(note, chart, len(spans), _overlapping(record.windows, spans, events))
        )
    return panels, max(len(flagged) - MAX_WATERFALLS, 0)


def scenario_context(record: ScenarioRecord) -> dict[str, Any]:
    result = record.result
    counts = result.counts
    outcome_rows = [
        {
            "name": cls.value.replace("_", " "),
            "count": counts.get(cls.value, 0),
            "tone": tone if counts.get(cls.value, 0) else "zero",
        }
        for cls, tone in CLASS_TONES
    ]
    invariant_rows = []
    for name, status in result.invariants.items():
        state = status.split(":", 1)[0]
        invariant_rows.append(
            {
                "name": name,
                "state": state,
                "detail": status.split(":", 1)[1].strip() if ":" in status else "",
                "description": _DESCRIPTIONS.get(name, ""),
                "violations": len(result.violations_of(name)),
            }
        )
    panels, more_notes = _note_panels(record)
    rates = throughput(record)
    return {
        "record": record,
        "verdict": result.verdict,
        "reasons": list(result.reasons[:MAX_REASONS]),
        "more_reasons": max(len(result.reasons) - MAX_REASONS, 0),
        "total_notes": counts.get("total", 0),
        "outcome_rows": outcome_rows,
        "invariant_rows": invariant_rows,
        "latency": latency(record.history),
        "throughput_chart": charts.throughput_chart(rates, record.windows),
        "bin_s": rates.bin_s,
        "series_colours": charts.SERIES_COLOURS,
        "faults": [
            {
                "window": w,
                "colour": charts.fault_colour(w.kind),
                "offset_s": (w.start - rates.start).total_seconds(),
                "duration_s": (w.end - w.start).total_seconds(),
            }
            for w in sorted(record.windows, key=lambda w: w.start)
        ],
        "figures": list(_flatten(record.figures)),
        "panels": panels,
        "more_notes": more_notes,
        "telemetry_loss": len(result.telemetry_loss),
        "missing_inputs": dict(result.missing_inputs),
    }


def render_index(
    run: RunInfo,
    scenarios: list[ScenarioRecord],
    *,
    junit: bool = False,
    files: SpanFiles | None = None,
    jaeger: dict[str, Any] | None = None,
) -> str:
    files = files or SpanFiles()
    contexts = [scenario_context(s) for s in scenarios]
    for context, name in zip(contexts, files.scenarios, strict=False):
        context["jaeger_file"] = name
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            run=run,
            verdict=worst_verdict([s.result.verdict for s in scenarios]),
            scenarios=contexts,
            generated_at=datetime.now(UTC),
            settings=sorted(_flatten(run.settings)),
            junit=junit,
            files=files,
            how_to_open=HOW_TO_OPEN,
            jaeger=jaeger,
        )
    )
