"""``--notepipe-jaeger`` from the outside: a real ``pytest`` run of a tiny scenario starts
the local Jaeger, forwards to it, reports forwarded vs returned spans, and leaves no
process behind; bad combinations are usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.test_plugin import (
    BUDGET,
    LOCAL,
    TINY_XDIST,
    _assert_nothing_outlives,
    _report,
    _run,
    _scenarios,
)

pytest_plugins = ["pytester"]

pytestmark = [pytest.mark.jaeger, pytest.mark.slow]


def test_notepipe_jaeger_forwards_every_span_and_counts_them(
    pytester: pytest.Pytester, jaeger_binary: Path
) -> None:
    _scenarios(pytester, test_scenario=TINY_XDIST)
    run = _run(
        pytester,
        *LOCAL,
        *BUDGET,
        "--notepipe-jaeger",
        "--notepipe-jaeger-bin",
        str(jaeger_binary),
        "--notepipe-report-dir",
        "reports",
    )
    assert run.proc.returncode == 0, run.stdout + run.stderr
    assert any("jaeger" in cmd for cmd in run.seen_commands()), "no Jaeger process ran"
    _assert_nothing_outlives(run)  # Jaeger is reaped with everything else
    _, summary = _report(pytester.path / "reports")
    check = summary["jaeger"]
    assert isinstance(check, dict), summary
    assert (check["traces_found"], check["missing_traces"]) == (check["traces"], [])
    assert check["spans_lost_forwarding"] == 0, check
    # Jaeger holds every span of the report; it was sent more (spans after the scenario).
    assert check["report_spans"] <= check["spans_returned"] <= check["spans_forwarded"], check
    assert f"jaeger: {check['spans_forwarded']} spans forwarded, Jaeger returned" in run.stdout
    assert "jaeger v1." in run.stdout  # the header names it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--notepipe-jaeger", "--notepipe-jaeger-endpoint", "http://127.0.0.1:1"),
            "use one of them",
        ),
        (("--notepipe-jaeger", "--notepipe-jaeger-bin", "/nonexistent/jaeger"), "make peers"),
    ],
)
def test_bad_jaeger_options_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    _scenarios(pytester, test_scenario=TINY_XDIST)
    run = _run(pytester, *LOCAL, *args, "--notepipe-report-dir", "reports")
    assert run.proc.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr, run.stderr
