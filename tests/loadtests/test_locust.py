"""Headless Locust runs of loadtests/ against a real local stack (``notepipe-harness stack up``).

Locust runs as a subprocess: gevent's monkey-patching must not leak into pytest,
and that is how people run it.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.services.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCUST = [sys.executable, "-m", "locust", "-f", "loadtests/"]
DEADLINE = "60"  # seconds; the default settings' time_to_terminal is far longer

pytestmark = pytest.mark.slow


def _locust(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOCUST, "--headless", "--notepipe-deadline", DEADLINE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def _assert_clean_e2e(result: subprocess.CompletedProcess[str], prefix: Path) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    stats = _stats(prefix)
    e2e = stats[("e2e", "accepted->terminal")]
    posts = stats[("POST", "/notes")]
    assert int(e2e["Request Count"]) > 0
    assert int(e2e["Request Count"]) == int(posts["Request Count"])  # every note followed
    assert e2e["Failure Count"] == "0"
    assert stats[("", "Aggregated")]["Failure Count"] == "0", stats


def test_headless_run_reports_e2e(stack_env: dict[str, str], tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    result = _locust(
        stack_env,
        *("-u", "4", "-r", "4", "-t", "10s"),
        *("--csv", str(prefix), "--html", str(tmp_path / "run.html")),
    )
    _assert_clean_e2e(result, prefix)
    assert (tmp_path / "run.html").stat().st_size > 0
    assert Path(f"{prefix}_stats_history.csv").exists()


def test_distributed_processes(stack_env: dict[str, str], tmp_path: Path) -> None:
    prefix = tmp_path / "dist"
    result = _locust(
        stack_env,
        *("--processes", "2", "-u", "4", "-r", "4", "-t", "6s", "--csv", str(prefix)),
    )
    _assert_clean_e2e(result, prefix)


def test_master_and_worker(stack_env: dict[str, str], tmp_path: Path) -> None:
    prefix = tmp_path / "mw"
    port = str(free_port())
    bind = ("--master-bind-host", "127.0.0.1", "--master-bind-port", port)
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", port],
            cwd=ROOT,
            env=stack_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        result = _locust(
            stack_env,
            *("--master", *bind, "--expect-workers", "1", "--expect-workers-max-wait", "30"),
            *("-u", "3", "-r", "3", "-t", "6s", "--csv", str(prefix)),
        )
        _assert_clean_e2e(result, prefix)
        worker.wait(timeout=30)  # the master's quit stops the worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def test_impossible_slo_exits_non_zero(stack_env: dict[str, str], tmp_path: Path) -> None:
    result = _locust(
        stack_env,
        *("-u", "2", "-r", "2", "-t", "3s", "--notepipe-slo-p95-ms", "1"),
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert "SLO violated: p95 end-to-end" in result.stderr
