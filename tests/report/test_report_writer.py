"""The run report directory: files, summary, history, spans, escaping, latest/."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from harness.checker import History, check
from harness.collector import read_text
from harness.record import ScenarioRecord
from harness.report import write_run_report
from harness.schedule import Schedule
from tests.checker.checker_synth import T0
from tests.report.report_synth import (
    DUP_NOTE,
    EVIL,
    EVIL_NOTE,
    LOST_NOTE,
    P,
    invalid_scenario,
    run_info,
    valid_scenario,
)

FILES = (
    "summary.json",
    "history.jsonl",
    "spans.otlp.jsonl.gz",
    "jaeger.json.gz",
    "jaeger/01-test_worker_sigkill.json",
    "jaeger/02-test_network_partition.json",
    "index.html",
)


@pytest.fixture(scope="module")
def scenarios() -> list[ScenarioRecord]:
    return [valid_scenario(), invalid_scenario()]


@pytest.fixture
def run_dir(tmp_path: Path, scenarios: list[ScenarioRecord]) -> Path:
    junit = tmp_path / "pytest-junit.xml"
    junit.write_text('<?xml version="1.0"?><testsuites><testsuite name="x"/></testsuites>')
    return write_run_report(tmp_path / "reports", run_info(), scenarios, junit_xml=junit)


def test_every_file_is_written_and_latest_is_a_real_copy(run_dir: Path) -> None:
    assert run_dir.name == run_info().run_id
    for name in (*FILES, "junit.xml"):
        assert (run_dir / name).stat().st_size > 0, name
    latest = run_dir.parent / "latest"
    assert latest.is_dir()
    assert not latest.is_symlink()
    for name in (*FILES, "junit.xml"):
        assert (latest / name).read_bytes() == (run_dir / name).read_bytes()
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["20250101T120000Z-42", "latest"]


def test_summary_takes_the_worst_verdict(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "invalid"
    assert summary["verdicts"] == {"valid": 1, "unknown": 0, "invalid": 1}
    assert summary["run"]["backend"] == "local"
    assert summary["files"]["junit"] == "junit.xml"
    valid, invalid = summary["scenarios"]
    assert (valid["name"], valid["verdict"]) == ("test_worker_sigkill", "valid")
    assert valid["reasons"] == []
    assert set(valid["invariants"].values()) == {"ok"}
    assert valid["latency_s"]["count"] == 15
    assert valid["latency_s"]["p50"] <= valid["latency_s"]["p99"] <= valid["latency_s"]["max"]
    assert invalid["verdict"] == "invalid"
    assert invalid["outcome"] == "failed"
    assert invalid["counts"]["lost"] == 1
    assert invalid["counts"]["duplicated"] == 1
    assert invalid["invariants"]["no_lost_notes"] == "violated"
    assert invalid["invariants"]["single_completion"] == "violated"
    assert set(invalid["flagged_notes"]) == {str(LOST_NOTE), str(DUP_NOTE), str(EVIL_NOTE)}
    assert [f["kind"] for f in invalid["faults"]] == ["partition", "latency"]
    assert invalid["figures"]["client_ops"] == {"ok": 8}


def test_jaeger_json_holds_every_trace(run_dir: Path, scenarios: list[ScenarioRecord]) -> None:
    document = json.loads(read_text(run_dir / "jaeger.json.gz"))
    expected = {s.trace_id for record in scenarios for s in record.spans}
    assert {t["traceID"] for t in document["data"]} == expected
    assert document["total"] == len(expected)
    spans = sum(len(t["spans"]) for t in document["data"])
    assert spans == sum(len(r.spans) for r in scenarios)


def test_one_jaeger_file_per_scenario(run_dir: Path, scenarios: list[ScenarioRecord]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    names = summary["files"]["jaeger_scenarios"]
    assert names == [s["jaeger_file"] for s in summary["scenarios"]]
    for name, record in zip(names, scenarios, strict=True):
        document = json.loads((run_dir / name).read_text())  # plain JSON: small enough
        assert {t["traceID"] for t in document["data"]} == {s.trace_id for s in record.spans}
        assert sum(len(t["spans"]) for t in document["data"]) == len(record.spans)
    html = (run_dir / "index.html").read_text()
    assert all(f'href="{name}"' in html for name in names)
    assert "Upload JSON" in html and "otlpjsonfile" in html


def test_otlp_jsonl_holds_every_span(run_dir: Path, scenarios: list[ScenarioRecord]) -> None:
    lines = read_text(run_dir / "spans.otlp.jsonl.gz").splitlines()
    found = [
        span
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert len(found) == sum(len(r.spans) for r in scenarios)


def test_history_is_one_sorted_timeline(run_dir: Path, scenarios: list[ScenarioRecord]) -> None:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    times = [datetime.fromisoformat(r["time"]) for r in rows]
    assert times == sorted(times)
    kinds = {(r["scenario"], r["kind"]) for r in rows}
    for name in ("test_worker_sigkill", "test_network_partition"):
        assert {(name, "client"), (name, "ledger"), (name, "fault")} <= kinds
    expected = sum(len(s.client_ops) + len(s.history.events) + len(s.faults) for s in scenarios)
    assert len(rows) == expected
    lost = [r for r in rows if r.get("note_id") == LOST_NOTE]
    assert {r["kind"] for r in lost} == {"client"}  # accepted, never in the ledger
    fault = next(r for r in rows if r["kind"] == "fault")
    assert datetime.fromisoformat(fault["end"]) > datetime.fromisoformat(fault["time"])


def test_html_escapes_user_text(run_dir: Path) -> None:
    html = (run_dir / "index.html").read_text()
    assert EVIL not in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; friends" in html
    assert html.count("<script") == 0  # the page needs no script at all


def test_html_shows_verdicts_tables_and_charts(run_dir: Path) -> None:
    html = (run_dir / "index.html").read_text()
    assert 'class="badge invalid big"' in html
    assert 'class="badge valid big"' in html
    assert html.count('class="chart throughput-chart"') == 2
    assert html.count('class="fault-window"') >= 3
    assert f'id="scenario-test_network_partition-note-{LOST_NOTE}"' in html
    assert f'id="scenario-test_network_partition-note-{DUP_NOTE}"' in html
    assert 'class="chart waterfall"' in html
    assert "failed unexpectedly" in html and "duplicated" in html
    for quantile in ("p50", "p90", "p95", "p99", "max"):
        assert f"<td>{quantile}</td>" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html  # self-contained: no external assets


def test_waterfalls_are_capped(tmp_path: Path) -> None:
    record = invalid_scenario()
    history = record.history
    notes = tuple(n for n in history.notes if n.id != LOST_NOTE)
    base = history.events
    # 25 more notes lost: accepted by the client, absent from the ledger
    accepted = dict(history.accepted)
    for i in range(25):
        accepted[500 + i] = T0 + timedelta(minutes=2, seconds=i)
    history = replace(history, notes=notes, events=base, accepted=accepted)
    record = replace(record, history=history, result=check(history, P.config()))
    run_dir = write_run_report(tmp_path, run_info("capped"), [record])
    html = (run_dir / "index.html").read_text()
    assert html.count('class="note"') == 20
    assert "and 8 more note(s) broke an invariant" in html


def test_empty_run_and_empty_scenario(tmp_path: Path) -> None:
    run_dir = write_run_report(tmp_path, run_info("empty"), [])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "unknown"
    assert summary["scenarios"] == []
    assert (run_dir / "history.jsonl").read_text() == ""
    assert json.loads(read_text(run_dir / "jaeger.json.gz"))["data"] == []
    assert "recorded no scenarios" in (run_dir / "index.html").read_text()

    history = History(
        notes=(), events=(), observed_at=T0, input_errors={"ledger": "connection refused"}
    )
    nothing = ScenarioRecord(
        name="test_nothing",
        nodeid="scenarios/test_x.py::test_nothing",
        started_at=T0,
        finished_at=T0,
        schedule=Schedule([]),
        faults=[],
        history=history,
        result=check(history, P.config()),
    )
    run_dir = write_run_report(tmp_path, run_info("nothing"), [nothing])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "unknown"
    assert summary["scenarios"][0]["latency_s"] == {"count": 0}
    html = (run_dir / "index.html").read_text()
    assert "connection refused" in html
    assert "No note reached a terminal status" in html
    assert 'class="chart throughput-chart"' in html
    assert (
        json.loads((tmp_path / "latest" / "summary.json").read_text())["run"]["run_id"] == "nothing"
    )


def test_latest_is_replaced_and_skips_the_plugins_parts(tmp_path: Path) -> None:
    first = write_run_report(tmp_path, run_info("first"), [valid_scenario()])
    (tmp_path / "second" / "parts").mkdir(parents=True)
    (tmp_path / "second" / "parts" / "x.pkl").write_bytes(b"pickle")
    second = write_run_report(tmp_path, run_info("second"), [])
    latest = tmp_path / "latest"
    assert json.loads((latest / "summary.json").read_text())["run"]["run_id"] == "second"
    assert not (latest / "parts").exists()
    assert (second / "parts" / "x.pkl").exists()
    assert (first / "index.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "latest", "second"]
