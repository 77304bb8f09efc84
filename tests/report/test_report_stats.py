"""The report's numbers and SVG helpers, on small hand-made inputs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harness.checker import FaultWindow, History, LedgerEvent, LedgerNote
from harness.report.charts import fmt_seconds, throughput_chart, ticks, waterfall
from harness.report.model import worst_verdict
from harness.report.stats import latency, pick_bin, quantile, throughput
from harness.spans import SpanRecord
from tests.checker.checker_synth import T0, ns
from tests.report.report_synth import valid_scenario


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], "unknown"),
        (["valid"], "valid"),
        (["valid", "unknown"], "unknown"),
        (["unknown", "invalid", "valid"], "invalid"),
    ],
)
def test_worst_verdict(verdicts: list[str], expected: str) -> None:
    assert worst_verdict(verdicts) == expected  # type: ignore[arg-type]


def test_quantile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.5) == 2.5
    assert quantile(values, 1.0) == 4.0
    assert quantile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)


def test_latency_runs_from_created_to_the_first_terminal_status() -> None:
    def note(i: int, status: str) -> LedgerNote:
        return LedgerNote(i, status, 1, T0, None, False, None)

    def event(i: int, to: str, seconds: float) -> LedgerEvent:
        return LedgerEvent(
            i, "processing", to, 1, "w1", None, T0 + timedelta(seconds=seconds), None
        )

    history = History(
        notes=(note(1, "completed"), note(2, "failed"), note(3, "processing")),
        events=(event(1, "completed", 2.0), event(1, "completed", 9.0), event(2, "failed", 4.0)),
        observed_at=T0 + timedelta(seconds=10),
    )
    result = latency(history)
    assert result.count == 2  # note 3 never finished
    assert result.quantiles["p50"] == 3.0
    assert result.quantiles["max"] == 4.0  # the duplicate completion does not stretch it
    assert latency(History(notes=(), events=(), observed_at=T0)).to_dict() == {"count": 0}


def test_bins_stay_few_and_rates_are_per_second() -> None:
    assert pick_bin(10) == 0.5
    assert pick_bin(600) == 5
    assert pick_bin(10 * 24 * 3600) == 3600
    record = valid_scenario()
    rates = throughput(record)
    completed = len([e for e in record.history.events if e.to_status == "completed"])
    assert sum(rates.series["completed"]) * rates.bin_s == pytest.approx(completed)
    assert rates.bins <= 240


def test_ticks_and_durations_read_well() -> None:
    assert ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert ticks(0, 0.35, 4) == [0, 0.1, 0.2, 0.3]
    assert fmt_seconds(0.0004) == "400 µs"
    assert fmt_seconds(0.0123) == "12.3 ms"
    assert fmt_seconds(1.234) == "1.23 s"
    assert fmt_seconds(125) == "2m 05s"


def test_throughput_chart_shades_and_escapes_faults() -> None:
    record = valid_scenario()
    evil = FaultWindow(
        "<b>kill</b>", "w&1", record.started_at, record.started_at + timedelta(seconds=2)
    )
    svg = str(throughput_chart(throughput(record), (evil,)))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'class="fault-window"' in svg
    assert "<b>" not in svg
    assert "&lt;b&gt;kill&lt;/b&gt; · w&amp;1" in svg


def test_waterfall_nests_children_and_keeps_orphans() -> None:
    def span(span_id: str, parent: str | None, start: float, end: float, name: str) -> SpanRecord:
        at = T0 + timedelta(seconds=start)
        return SpanRecord(
            "ab" * 16,
            span_id,
            parent,
            name,
            "notepipe-api",
            ns(at),
            ns(T0 + timedelta(seconds=end)),
        )

    spans = [
        span("1" * 16, None, 0, 1, "root"),
        span("2" * 16, "1" * 16, 0.1, 0.5, "child"),
        span("3" * 16, "f" * 16, 0.6, 0.9, "orphan<script>"),  # its parent was never exported
    ]
    svg = str(waterfall(spans))
    assert svg.count('class="span-bar"') == 3
    assert svg.index("root") < svg.index("child") < svg.index("orphan")
    assert "orphan&lt;script&gt;" in svg
    assert 'class="span-bar"' in str(waterfall(spans, max_rows=1))
    assert "2 more span(s)" in str(waterfall(spans, max_rows=1))
    assert 'class="chart waterfall"' in str(waterfall([]))  # nothing to draw still draws
