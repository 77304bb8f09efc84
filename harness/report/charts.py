"""Inline SVG charts for the run report, built as strings in Python (no JS, no assets).

Every piece of text that reaches the SVG goes through :func:`markupsafe.escape`:
span names, fault targets and errors can come from users.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from harness.checker.history import FaultWindow, LedgerEvent
from harness.report.stats import Throughput
from harness.spans import SpanRecord

SERIES_COLOURS = {"completed": "#2b8a3e", "failed": "#e03131", "accepted": "#5c7cfa"}
SERVICE_COLOURS = {
    "notepipe-api": "#4c6ef5",
    "notepipe-worker": "#12b886",
    "notepipe-reconciler": "#ae3ec9",
    "notepipe-harness": "#f08c00",
}
PALETTE = ("#1c7ed6", "#0ca678", "#f76707", "#7048e8", "#e64980", "#74b816", "#fab005", "#15aabf")
#: No greens or blues: those are the throughput series.
FAULT_COLOURS = ("#f59f00", "#f76707", "#e64980", "#be4bdb", "#7950f2", "#868e96")
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
CHAR_W = 6.2  # rough width of one 11px character, for label placement
LABEL_ROWS = 3


def _colour(key: str, palette: Sequence[str]) -> str:
    return palette[zlib.crc32(key.encode()) % len(palette)]


def service_colour(service: str) -> str:
    return SERVICE_COLOURS.get(service) or _colour(service, PALETTE)


def fault_colour(kind: str) -> str:
    return _colour(kind, FAULT_COLOURS)


def fmt_seconds(s: float) -> str:
    """A duration for people: 850 µs, 12.3 ms, 1.24 s, 2m 05s."""
    if s < 0:
        return "-" + fmt_seconds(-s)
    if s < 0.001:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < 60:
        return f"{s:.3g} s"
    minutes, rest = divmod(round(s), 60)
    return f"{minutes}m {rest:02d}s"


def nice_step(span: float, target: int = 6) -> float:
    """A 1/2/5 x 10^k step giving about ``target`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


def ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9) * step
    count = int((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(max(count, 0))]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Frame:
    """A plot area inside an SVG of ``width`` x ``height``; maps data to pixels."""

    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    x0: float
    x1: float
    y0: float = 0.0
    y1: float = 1.0

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * self.plot_w

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.top + self.plot_h - (value - self.y0) / span * self.plot_h


def _svg(width: float, height: float, css_class: str, label: str, body: Iterable[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" style="{FONT};font-size:11px">'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every part escaped above


def _fault_shading(
    frame: Frame, faults: Sequence[FaultWindow], origin: datetime, *, labels: bool
) -> list[str]:
    """Shade each fault window; with ``labels``, name it above the plot in one of
    ``LABEL_ROWS`` rows (a label that fits nowhere is left to the tooltip and legend)."""
    parts: list[str] = []
    row_ends = [-1e9] * LABEL_ROWS  # right edge of the last label in each row
    opacity = 0.16 if labels else 0.07
    for window in sorted(faults, key=lambda w: w.start):
        a = frame.x(max((window.start - origin).total_seconds(), frame.x0))
        b = frame.x(min((window.end - origin).total_seconds(), frame.x1))
        if b < frame.left or a > frame.left + frame.plot_w:
            continue
        colour = fault_colour(window.kind)
        seconds = (window.end - window.start).total_seconds()
        title = (
            f"{window.kind} on {window.target}: {window.start.isoformat()} → "
            f"{window.end.isoformat()} ({fmt_seconds(seconds)})"
        )
        parts.append(
            f'<rect class="fault-window" data-kind="{escape(window.kind)}" x="{_num(a)}" '
            f'y="{_num(frame.top)}" width="{_num(max(b - a, 1.5))}" height="{_num(frame.plot_h)}" '
            f'fill="{colour}" fill-opacity="{opacity}" stroke="{colour}" '
            f'stroke-opacity="{0.5 if labels else 0.2}"><title>{escape(title)}</title></rect>'
        )
        if not labels:
            continue
        text = f"{window.kind} · {window.target}"
        row = next((i for i, end in enumerate(row_ends) if a >= end), None)
        if row is None:
            continue
        row_ends[row] = a + len(text) * CHAR_W + 10
        y = frame.top - 6 - row * 13
        parts.append(
            f'<text class="fault-label" x="{_num(a + 1)}" y="{_num(y)}" fill="{colour}" '
            f'font-weight="600">{escape(text)}<title>{escape(title)}</title></text>'
        )
    return parts


def _x_axis(frame: Frame, fmt: str = "{}s") -> list[str]:
    parts = []
    base = frame.top + frame.plot_h
    parts.append(
        f'<line x1="{_num(frame.left)}" x2="{_num(frame.left + frame.plot_w)}" '
        f'y1="{_num(base)}" y2="{_num(base)}" stroke="#adb5bd"/>'
    )
    for t in ticks(frame.x0, frame.x1, 10):
        x = frame.x(t)
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(base)}" y2="{_num(base + 4)}" '
            f'stroke="#adb5bd"/><text x="{_num(x)}" y="{_num(base + 16)}" text-anchor="middle" '
            f'fill="#495057">{escape(fmt.format(_num(t)))}</text>'
        )
    return parts


def throughput_chart(data: Throughput, faults: Sequence[FaultWindow]) -> Markup:
    """Completions (area), failures and accepted posts (lines) per second, faults shaded."""
    span_s = (data.end - data.start).total_seconds()
    peak = max([v for series in data.series.values() for v in series] or [0.0])
    top_tick = ticks(0, max(peak, 1.0), 5)[-1]
    y1 = top_tick if top_tick >= peak else top_tick + nice_step(max(peak, 1.0), 5)
    frame = Frame(1000, 280, 46, 14, 52, 30, 0.0, span_s, 0.0, y1)
    parts: list[str] = []
    for t in ticks(0, y1, 5):
        y = frame.y(t)
        parts.append(
            f'<line x1="{_num(frame.left)}" x2="{_num(frame.left + frame.plot_w)}" '
            f'y1="{_num(y)}" y2="{_num(y)}" stroke="#e9ecef"/>'
            f'<text x="{_num(frame.left - 6)}" y="{_num(y + 4)}" text-anchor="end" '
            f'fill="#495057">{_num(t)}</text>'
        )
    parts += _fault_shading(frame, faults, data.start, labels=True)
    for name in ("accepted", "failed", "completed"):
        values = data.series.get(name, [])
        if not values:
            continue
        points = [
            (frame.x(min((i + 0.5) * data.bin_s, span_s)), frame.y(v)) for i, v in enumerate(values)
        ]
        line = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        colour = SERIES_COLOURS[name]
        if name == "completed":
            base = frame.y(0)
            area = f"{_num(points[0][0])},{_num(base)} {line} {_num(points[-1][0])},{_num(base)}"
            parts.append(
                f'<polygon class="series-area" points="{area}" fill="{colour}" fill-opacity="0.18"/>'
            )
        dash = ' stroke-dasharray="5 4"' if name == "accepted" else ""
        parts.append(
            f'<polyline class="series series-{name}" points="{line}" fill="none" '
            f'stroke="{colour}" stroke-width="{2 if name == "completed" else 1.5}"{dash} '
            f'stroke-linejoin="round"><title>{name} per second</title></polyline>'
        )
    parts += _x_axis(frame)
    parts.append(
        f'<text x="{_num(frame.left - 36)}" y="{_num(frame.top + frame.plot_h / 2)}" '
        f'fill="#495057" transform="rotate(-90 {_num(frame.left - 36)} '
        f'{_num(frame.top + frame.plot_h / 2)})" text-anchor="middle">per second</text>'
    )
    label = f"throughput over {fmt_seconds(span_s)}, {len(faults)} fault window(s)"
    return _svg(frame.width, frame.height, "throughput-chart", label, parts)


def _span_tree(spans: Sequence[SpanRecord]) -> list[tuple[SpanRecord, int]]:
    """Spans depth-first (children by start time) with their depth; orphans become roots."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[SpanRecord, int]] = []
    stack = [(s, 0) for s in sorted(children.get(None, []), key=lambda s: -s.start_ns)]
    while stack:
        span, depth = stack.pop()
        ordered.append((span, depth))
        kids = sorted(children.get(span.span_id, []), key=lambda s: -s.start_ns)
        stack.extend((k, depth + 1) for k in kids)
    return ordered


def _ns(at: datetime) -> int:
    return round(at.timestamp() * 1e9)


def _ledger_markers(frame: Frame, events: Sequence[LedgerEvent], t0: int, y: float) -> list[str]:
    """A diamond per ledger transition, labelled with its new status on one of two
    staggered lines; red for failures and for anything after a terminal status."""
    parts = []
    line_ends = [-1e9, -1e9]
    terminal_seen = False
    for event in events:
        x = frame.x((_ns(event.at) - t0) / 1e9)
        bad = terminal_seen or event.to_status == "failed" or bool(event.error)
        terminal_seen = terminal_seen or event.to_status in ("completed", "failed")
        colour = "#e03131" if bad else "#343a40"
        title = f"{event.from_status} → {event.to_status} (attempt {event.attempt})"
        if event.worker:
            title += f" by {event.worker}"
        if event.error:
            title += f": {event.error}"
        line = 0 if x >= line_ends[0] else 1
        line_ends[line] = x + 9 + len(event.to_status) * CHAR_W * 0.9
        ty = y + 13 + line * 14
        parts.append(
            f'<g class="ledger-event"><path d="M{_num(x)},{_num(y + 3)} l5,6 l-5,6 l-5,-6 z" '
            f'fill="{colour}"/><line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(y + 15)}" '
            f'y2="{_num(ty)}" stroke="{colour}" stroke-opacity="0.3"/>'
            f'<text x="{_num(x + 7)}" y="{_num(ty)}" fill="{colour}" '
            f'font-size="10">{escape(event.to_status)}</text><title>{escape(title)}</title></g>'
        )
    return parts


def waterfall(
    spans: Sequence[SpanRecord],
    events: Sequence[LedgerEvent] = (),
    faults: Sequence[FaultWindow] = (),
    *,
    max_rows: int = 60,
) -> Markup:
    """One note's spans as nested bars (service colour, name, duration), its ledger
    transitions as a marker row on top, and overlapping fault windows shaded."""
    rows = _span_tree(spans)
    hidden = max(len(rows) - max_rows, 0)
    rows = rows[:max_rows]
    starts = [s.start_ns for s, _ in rows] + [_ns(e.at) for e in events]
    ends = [s.end_ns for s, _ in rows] + [_ns(e.at) for e in events]
    t0 = min(starts, default=0)
    total_s = max((max(ends, default=0) - t0) / 1e9, 1e-3)
    row_h, label_w = 20, 330
    height = 40 + 34 * bool(events) + row_h * len(rows) + 18 * bool(hidden) + 10
    frame = Frame(1000, height, label_w, 80, 28, 10, 0.0, total_s * 1.02)
    origin = datetime.fromtimestamp(t0 / 1e9, tz=UTC)
    parts = _fault_shading(frame, faults, origin, labels=False)
    for t in ticks(0, total_s, 8):
        x = frame.x(t)
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(frame.top - 4)}" '
            f'y2="{_num(height - frame.bottom)}" stroke="#e9ecef"/><text x="{_num(x)}" '
            f'y="{_num(frame.top - 8)}" text-anchor="middle" fill="#868e96">'
            f"{escape(fmt_seconds(t) if t else '0')}</text>"
        )
    y = frame.top + 4
    if events:
        parts.append(
            f'<text x="8" y="{_num(y + 14)}" fill="#495057" font-weight="600">ledger</text>'
        )
        parts += _ledger_markers(frame, events, t0, y)
        y += 34
    for span, depth in rows:
        a = frame.x((span.start_ns - t0) / 1e9)
        b = frame.x((span.end_ns - t0) / 1e9)
        colour = service_colour(span.service)
        name = span.name if len(span.name) <= 38 else span.name[:37] + "…"
        error = span.status == "ERROR"
        stroke = ' stroke="#c92a2a" stroke-width="2"' if error else ""
        title = f"{span.service}: {span.name} — {fmt_seconds(span.duration_s)}"
        if span.status_message:
            title += f" ({span.status_message})"
        parts.append(
            f'<g class="span-row"><text x="{_num(8 + depth * 12)}" y="{_num(y + 14)}">'
            f'<tspan fill="{colour}" font-weight="600">{escape(span.service)}</tspan>'
            f'<tspan fill="#212529" dx="5">{escape(name)}</tspan></text>'
            f'<rect class="span-bar" x="{_num(a)}" y="{_num(y + 3)}" width="{_num(max(b - a, 2))}" '
            f'height="{row_h - 6}" rx="2" fill="{colour}" fill-opacity="0.85"{stroke}/>'
            f'<text x="{_num(max(b, a + 2) + 5)}" y="{_num(y + 14)}" fill="#495057">'
            f"{escape(fmt_seconds(span.duration_s))}</text>"
            f"<title>{escape(title)}</title></g>"
        )
        y += row_h
    if hidden:
        parts.append(
            f'<text x="8" y="{_num(y + 13)}" fill="#868e96">… {hidden} more span(s) not drawn</text>'
        )
    return _svg(frame.width, height, "waterfall", f"{len(rows)} spans", parts)
