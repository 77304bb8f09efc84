"""The notepipe pytest plugin, tested from the outside with ``pytester``: every run here is
a real ``pytest`` subprocess with the plugin loaded from its entry point, on the local
backend, writing its report under the test's temporary directory.

- bad options are usage errors before any service starts;
- the header names the backend and the service versions;
- a tiny scenario (30 notes, 2 workers, proxies, a worker kill) passes and writes the
  whole report; under xdist two scenarios land in one report, and a scenario whose
  ledger shows a second completion is reported ``invalid``;
- nothing the harness starts outlives the session: not when a scenario crashes with a
  fault active, not on Ctrl-C in the middle of a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import reaper
from harness.wait import wait_until

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow

#: The real cache (pytester points HOME at a temp dir): reuse the built PostgreSQL template.
CACHE_HOME = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
#: Inherited by every process the inner pytest starts (pipeline processes drop NOTEPIPE_*).
MARKER_VAR = "HARNESS_LEAK_MARKER"
RUN_TIMEOUT = 150

SCENARIO_HEAD = """
import os
from pathlib import Path

import psycopg
import pytest

from harness.faults import FaultSpec
from harness.load import LoadSpec
from harness.schedule import Schedule
from harness.wait import wait_until

pytestmark = pytest.mark.chaos


def completed_note(stack):
    with psycopg.connect(stack.direct_settings.database_dsn) as conn:
        row = conn.execute(
            "SELECT id, attempt, worker, job_id FROM notes WHERE status = 'completed' "
            "ORDER BY id LIMIT 1"
        ).fetchone()
    return row


def stopped(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] == "T"
"""

TINY = """
def test_tiny(notepipe_stack, notepipe_run):
    stack = notepipe_stack(workers=2)
    outcome = notepipe_run(stack).execute(
        LoadSpec(notes=30, rate=15, special={"[chaos:sleep=0.3]": 0.5}),
        Schedule([FaultSpec("kill_worker", at=1.0, duration=0.5, target="busy")], seed=1),
    )
    assert outcome.result.verdict == "valid", outcome.explain()
    [kill] = outcome.faults
    assert kill.missed is None and kill.effect.evidence["interrupted"], kill
"""

TINY_XDIST = """
def test_tiny_a(notepipe_stack, notepipe_run):
    stack = notepipe_stack(workers=2, proxies=False)
    outcome = notepipe_run(stack).execute(LoadSpec(notes=30, rate=20))
    assert outcome.result.verdict == "valid", outcome.explain()
"""

# A fencing bug, simulated: a zombie attempt's completion reaches the ledger after the
# note completed. The append-only history keeps it; the checker must call the run invalid.
ZOMBIE = """
def test_zombie_completion(notepipe_stack, notepipe_run):
    stack = notepipe_stack(workers=2, proxies=False)

    def zombie_writes(client):
        note_id, attempt, worker, job_id = wait_until(
            lambda: completed_note(stack), 30, describe="a completed note"
        )
        with psycopg.connect(stack.direct_settings.database_dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO note_events (note_id, from_status, to_status, attempt, worker, job_id)"
                " VALUES (%s, 'processing', 'completed', %s, %s, %s)",
                (note_id, attempt, f"{worker}.zombie", job_id),
            )
        Path("zombie_note").write_text(str(note_id))

    outcome = notepipe_run(stack).execute(LoadSpec(notes=30, rate=20), during=zombie_writes)
    assert outcome.result.verdict == "valid", outcome.explain()
"""

# Crash mid-scenario while a fault is active (a worker SIGSTOPped) and load is running.
CRASH = """
def test_crash(notepipe_stack, notepipe_run):
    stack = notepipe_stack(workers=2)

    def crash(client):
        wait_until(lambda: completed_note(stack), 30, describe="a completed note")
        wait_until(lambda: stopped(stack.workers[1].pid), 30, describe="worker-1 paused")
        raise RuntimeError("the scenario crashed mid-run")

    notepipe_run(stack).execute(
        LoadSpec(notes=30, rate=3),
        Schedule([FaultSpec("pause_worker", at=0.2, duration=60, target="worker-1")]),
        during=crash,
    )
"""

# Long enough to be interrupted: 30 notes over 30 s, a worker paused, one killed.
INTERRUPTED = """
def test_interrupted(notepipe_stack, notepipe_run):
    stack = notepipe_stack(workers=2)

    def running(client):
        paused, killed = stack.workers[1], stack.workers[0]
        wait_until(lambda: stopped(paused.pid) and not killed.alive(), 30, describe="faults")
        Path(os.environ["SCENARIO_RUNNING_FLAG"]).touch()

    notepipe_run(stack).execute(
        LoadSpec(notes=30, rate=1),
        Schedule([
            FaultSpec("pause_worker", at=0.2, duration=60, target="worker-1"),
            FaultSpec("kill_worker", at=0.5, duration=60, target="worker-0"),
        ]),
        during=running,
    )
"""


# ---------------------------------------------------------------- helpers
def _scenarios(pytester: pytest.Pytester, **files: str) -> None:
    """Scenario modules plus an ini like the project's (strict markers, warnings are errors)."""
    pytester.makeini(
        """
        [pytest]
        addopts = --strict-markers
        markers = chaos: a fault-injection scenario
        filterwarnings =
            error
            ignore::DeprecationWarning
            ignore::pytest.PytestUnraisableExceptionWarning
        """
    )
    pytester.makepyfile(**{name: SCENARIO_HEAD + body for name, body in files.items()})


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[19]  # field 22: start time, in ticks


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


@dataclass
class WatchedRun:
    """An inner ``pytest`` in its own session; every process of its tree is remembered
    (polled every 50 ms), and every process carries ``MARKER_VAR`` unless it was given a
    clean environment (PostgreSQL is: the tree watch covers it)."""

    proc: subprocess.Popen[str]
    marker: str
    seen: dict[tuple[int, str], str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    _done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            for pid in [self.proc.pid, *reaper.descendants(self.proc.pid)]:
                start = _start_time(pid)
                # Read again every time: a child caught between fork and exec still shows
                # its parent's command line (CI: the API was seen only as "pytest ...").
                command = _cmdline(pid)
                if start is not None and command:
                    self.seen[pid, start] = command
            self._done.wait(0.05)

    def marked(self) -> list[int]:
        needle = f"{MARKER_VAR}={self.marker}".encode()
        return [
            pid
            for pid in _all_pids()
            if pid != os.getpid() and reaper.pid_alive(pid) and needle in _environ(pid)
        ]

    def seen_commands(self) -> list[str]:
        return list(self.seen.values())

    def survivors(self) -> dict[int, str]:
        """Live processes of the run: seen in its tree (same pid *and* start time) or marked."""
        alive = {
            pid: cmd
            for (pid, start), cmd in list(self.seen.items())
            if pid != self.proc.pid and _start_time(pid) == start and reaper.pid_alive(pid)
        }
        alive.update({pid: _cmdline(pid) for pid in self.marked() if pid != self.proc.pid})
        return alive

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.communicate(timeout=10)
            self._done.set()
            self._thread.join(5)
        return self.proc.returncode

    def kill_survivors(self) -> None:
        """Clean up after a failed leak check: only this run's own processes, by pid."""
        for pid in self.survivors():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NOTEPIPE_"))}
    env["XDG_CACHE_HOME"] = CACHE_HOME
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _start(pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> WatchedRun:
    marker = uuid.uuid4().hex
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=pytester.path,
        env=_env({MARKER_VAR: marker, **(env or {})}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return WatchedRun(proc, marker)


@contextlib.contextmanager
def _sigint_as_in_a_terminal() -> Iterator[None]:
    """Children started in this block get SIGINT's default disposition, as a command typed
    in a terminal does. A test run started in the background without job control
    (``cmd &`` in a script, ``nohup``) has SIGINT ignored, every child inherits that, and an
    inner pytest then never sees the Ctrl-C it is sent (CI: it ran on to "1 passed")."""
    prior = signal.getsignal(signal.SIGINT)
    if prior is signal.SIG_IGN:  # a caught signal is reset to its default by exec
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if prior is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> WatchedRun:
    run = _start(pytester, *args, env=env)
    run.wait()
    return run


def _assert_nothing_outlives(run: WatchedRun) -> None:
    try:
        wait_until(lambda: not run.survivors(), 15, describe="every process of the run to exit")
    except AssertionError:
        pytest.fail(f"processes outlived the pytest session: {run.survivors()}")
    finally:
        run.kill_survivors()


def _report(report_dir: Path) -> tuple[Path, dict[str, object]]:
    runs = [p for p in report_dir.iterdir() if p.name != "latest"]
    assert len(runs) == 1, f"expected one run directory in {report_dir}: {runs}"
    return runs[0], json.loads((runs[0] / "summary.json").read_text())


LOCAL = ("--notepipe-backend", "local")
#: Runs that do not test the calibration skip it (one stack less per run).
BUDGET = ("--notepipe-service-budget", "0.5")
REPORT_FILES = {
    "summary.json",
    "index.html",
    "history.jsonl",
    "jaeger",
    "jaeger.json.gz",
    "spans.otlp.jsonl.gz",
    "junit.xml",
}


# ---------------------------------------------------------------- options
BAD_OPTIONS = {
    "option": (
        ("--notepipe-backend", "bogus"),
        {},
        "notepipe: unknown backend 'bogus'",
    ),
    "env": (
        (),
        {"NOTEPIPE_BACKEND": "bogus"},
        "notepipe: unknown backend 'bogus' from NOTEPIPE_BACKEND",
    ),
    "soak-0": (
        ("--notepipe-backend", "local", "--notepipe-soak", "0"),
        {},
        "notepipe: --notepipe-soak takes a positive number of examples",
    ),
}


def test_bad_options_are_usage_errors_before_anything_starts(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, test_scenario=TINY)
    # The three runs go side by side: each only has to start Python and be refused.
    runs = {
        name: _start(pytester, *args, "--notepipe-report-dir", "reports", env=env)
        for name, (args, env, _) in BAD_OPTIONS.items()
    }
    for name, run in runs.items():
        run.wait()
        message = BAD_OPTIONS[name][2]
        assert run.proc.returncode == pytest.ExitCode.USAGE_ERROR, (name, run.stdout, run.stderr)
        assert message in run.stderr, (name, run.stderr)
        assert "Traceback" not in run.stderr, (name, run.stderr)
        assert "valid: local, testcontainers, external, auto" in run.stderr or name == "soak-0"
        # Nothing started: the run's process tree was the pytest process alone.
        children = [cmd for (pid, _), cmd in run.seen.items() if pid != run.proc.pid]
        assert children == [], (name, children)
        assert not any(re.search(r"redis-server|postgres", c) for c in run.seen_commands())
    assert not (pytester.path / "reports").exists()


# ---------------------------------------------------------------- runs and reports
def test_tiny_scenario_header_verdict_table_and_run_report(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, test_scenario=TINY)
    report_dir = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        *LOCAL,
        "--notepipe-report-dir",
        str(report_dir),
        "-p",
        "no:cacheprovider",
        timeout=RUN_TIMEOUT,
    )
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines(
        [
            r"notepipe: backend=local \(redis .*\d+\.\d+.*, postgres \d+(\.\d+)+\); run \S+",
            r"=+ notepipe verdicts =+",
            r"scenario\s+verdict\s+test\s+notes\s+completed\s+failed\s+recovered\s+lost\s+dup\s+stuck",
            r"test_tiny\s+valid\s+passed\s+30\s+\d+\s+0\s+\d+\s+0\s+0\s+0\s+\d+\.\ds",
            r"margin: the tightest deadline margin .*",
            r"deadline oracle: service budget \d\.\d+s per note = 2 x \d\.\d+s measured .*",
            r"report: .*/reports/\S+/index.html\s+\(also .*/reports/latest\)",
        ]
    )
    run_dir, summary = _report(report_dir)
    assert {p.name for p in run_dir.iterdir()} >= REPORT_FILES
    assert {p.name for p in (report_dir / "latest").iterdir()} >= REPORT_FILES
    assert summary["verdict"] == "valid"
    assert summary["files"]["junit"] == "junit.xml"  # type: ignore[index]
    assert "junit.xml" in (run_dir / "index.html").read_text()
    scenarios = summary["scenarios"]
    assert isinstance(scenarios, list)
    assert [(s["name"], s["verdict"], s["outcome"]) for s in scenarios] == [
        ("test_tiny", "valid", "passed")
    ]
    assert [f["kind"] for f in scenarios[0]["faults"]] == ["kill_worker"]
    header = re.search(r"notepipe: backend=local .*; run (\S+)", str(result.stdout))
    assert header is not None
    assert header.group(1) == run_dir.name  # the header's run id names the report directory
    assert json.loads((report_dir / "latest" / "summary.json").read_text()) == summary


def test_xdist_run_is_one_report_and_an_invalid_scenario_is_reported_invalid(
    pytester: pytest.Pytester,
) -> None:
    _scenarios(pytester, test_a=TINY_XDIST, test_b=ZOMBIE)
    report_dir = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        *LOCAL,
        *BUDGET,
        "-n",
        "2",
        "--notepipe-report-dir",
        str(report_dir),
        "-p",
        "no:cacheprovider",
        timeout=RUN_TIMEOUT,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines_random(
        [
            r"test_tiny_a\s+valid\s+passed\s+30\s+30\s",
            r"test_zombie_completion\s+invalid\s+failed\s+30\s",
        ]
    )
    run_dir, summary = _report(report_dir)
    assert {p.name for p in run_dir.iterdir()} >= REPORT_FILES
    assert summary["verdict"] == "invalid"
    scenarios = {s["name"]: s for s in summary["scenarios"]}  # type: ignore[attr-defined]
    assert set(scenarios) == {"test_tiny_a", "test_zombie_completion"}
    assert scenarios["test_tiny_a"]["verdict"] == "valid"
    zombie = scenarios["test_zombie_completion"]
    assert zombie["verdict"] == "invalid"
    assert zombie["invariants"]["single_completion"] != "ok", zombie["invariants"]
    note = int((pytester.path / "zombie_note").read_text())
    assert {v["note_id"] for v in zombie["violations"]} == {note}, zombie["violations"]
    # The failing test's message is the checker's explanation.
    result.stdout.fnmatch_lines(["*test_zombie_completion: verdict invalid*"])


# ---------------------------------------------------------------- nothing outlives the run
def test_nothing_outlives_a_scenario_that_crashes_with_a_fault_active(
    pytester: pytest.Pytester,
) -> None:
    _scenarios(pytester, test_scenario=CRASH)
    run = _run(pytester, *LOCAL, *BUDGET, "--notepipe-report-dir", "reports")
    assert run.proc.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "RuntimeError: the scenario crashed mid-run" in run.stdout, run.stdout
    commands = " ".join(run.seen_commands())
    for name in ("redis-server", "postgres", "notepipe.cli worker", "notepipe.cli api"):
        assert name in commands, f"{name} never ran: the test proves nothing"
    _assert_nothing_outlives(run)


def test_nothing_outlives_ctrl_c_in_the_middle_of_a_scenario(pytester: pytest.Pytester) -> None:
    _scenarios(pytester, test_scenario=INTERRUPTED)
    flag = pytester.path / "running"
    with _sigint_as_in_a_terminal():
        run = _start(
            pytester,
            *LOCAL,
            *BUDGET,
            "--notepipe-report-dir",
            "reports",
            env={"SCENARIO_RUNNING_FLAG": str(flag)},
        )
    try:

        def stack_up() -> bool:
            workers = [p for p in run.marked() if "notepipe.cli worker" in _cmdline(p)]
            return len(workers) >= 1 and flag.exists()

        wait_until(stack_up, 90, describe="the scenario's workers, load and faults to run")
        os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        run.wait(timeout=90)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.wait(timeout=10)
    assert run.proc.returncode == pytest.ExitCode.INTERRUPTED, run.stdout + run.stderr
    commands = " ".join(run.seen_commands())
    for name in (
        "redis-server",
        "postgres",
        "notepipe.cli worker",
        "notepipe.cli api",
        "harness.proxy",
        "notepipe.cli reconcile",
    ):
        assert name in commands, f"{name} never ran: the test proves nothing"
    _assert_nothing_outlives(run)
